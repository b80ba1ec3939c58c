/**
 * Whom a gateway admits comes from the claims plan alone (issue 12): a certificate counts only
 * from its own ExposedService's Secret, made by the controller, for that service's identity and
 * with exactly the planned grants.
 */
import { X509Certificate } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import { planClaims } from '../../src/controller/exposedservice/claims.ts';
import { credentialSecretName } from '../../src/controller/exposedservice/desired.ts';
import { controllerReference } from '../../src/controller/runtime/ownership.ts';
import { admittedAgents, plannedGrants } from '../../src/controller/trust/admission.ts';
import type { ExposedService, Gateway } from '../../src/crds/types.ts';
import type { GrantSet } from '../../src/pki/grants.ts';
import { createCA, issueAgentCertificate } from '../../src/pki/issue.ts';

const validity = { notAfter: new Date(Date.now() + 3600_000) };
const ca = createCA('eu CA', validity);
const otherCA = createCA('us CA', validity);
const gateway: Gateway = {
  apiVersion: 'webgw.io/v1alpha1',
  kind: 'Gateway',
  metadata: { name: 'eu' },
  spec: {
    placement: {},
    listeners: { tcp: { portRange: { from: 20000, to: 20009 } }, tunnel: { port: 8443 } },
    hostnamePolicy: { external: 'Allowed' },
  },
};

function xsvc(ns: string, name: string, uid: string, created: string, hostnames: string[]): ExposedService {
  return {
    apiVersion: 'webgw.io/v1alpha1',
    kind: 'ExposedService',
    metadata: { name, namespace: ns, uid, creationTimestamp: created },
    spec: {
      gateways: [{ name: 'eu' }],
      mode: 'Sidecar',
      selector: { app: name },
      backend: { port: 8080 },
      routes: [{ protocol: 'HTTP', hostnames }],
      proxyProtocol: 'None',
    },
  };
}

function secretFor(
  service: ExposedService,
  certPem: string,
  owned = true,
  name = credentialSecretName(service.metadata.name),
): V1Secret {
  return {
    metadata: {
      name,
      namespace: service.metadata.namespace,
      labels: { 'webgw.io/exposed-service': service.metadata.name },
      ...(owned
        ? {
            ownerReferences: [
              controllerReference({ kind: 'ExposedService', name: service.metadata.name, uid: service.metadata.uid }),
            ],
          }
        : {}),
    },
    data: { 'eu.crt': Buffer.from(certPem).toString('base64') },
  };
}

const issue = (grants: GrantSet, from = ca): string => issueAgentCertificate(from, grants, validity).certPem;
const serial = (pem: string): string => new X509Certificate(pem).serialNumber.toUpperCase();

describe('gateway admission', () => {
  const web = xsvc('shop', 'web', 'uid-web-2', '2026-01-02T00:00:00Z', ['shop.example']);
  const plans = planClaims([gateway], [web], [{ name: 'shop', labels: {} }]);
  const planned = plannedGrants(web, plans.get('shop/web')!.gateways[0]!);
  const good = issue(planned);
  const admit = (secrets: V1Secret[], services: ExposedService[] = [web], maxAgents?: number) =>
    admittedAgents({
      gateway: 'eu',
      caPem: ca.certPem,
      services,
      plans: planClaims([gateway], services, [
        { name: 'shop', labels: {} },
        { name: 'evil', labels: {} },
      ]),
      credentialOf: (s) =>
        secrets.find(
          (x) =>
            x.metadata?.namespace === s.metadata.namespace &&
            x.metadata?.name === credentialSecretName(s.metadata.name),
        ),
      ...(maxAgents ? { maxAgents } : {}),
    });

  const cases: Array<[string, () => V1Secret[], string[]]> = [
    ['the certificate the controller issued, in its own Secret', () => [secretFor(web, good)], [serial(good)]],
    [
      'the same certificate in a Secret the tenant made (no controller reference)',
      () => [secretFor(web, good, false)],
      [],
    ],
    [
      'a certificate of a deleted ExposedService of the same name (another uid)',
      () => [secretFor(web, issue({ ...planned, identity: 'shop/web/uid-web-1' }))],
      [],
    ],
    [
      'a certificate with a grant the plan no longer gives',
      () => [secretFor(web, issue({ ...planned, http: ['shop.example', 'bank.example'] }))],
      [],
    ],
    ["a certificate from another gateway's CA", () => [secretFor(web, issue(planned, otherCA))], []],
    [
      'labelled copies under other names',
      () => Array.from({ length: 50 }, (_, i) => secretFor(web, good, true, `copy-${i}`)),
      [],
    ],
  ];
  it.each(cases)('%s', (_name, secrets, expected) => {
    expect(admit(secrets()).serials).toEqual(expected);
  });

  it('a withdrawn name stays withdrawn: its old holder cannot bring its certificate back', () => {
    // shop/web held bank.example and kept its certificate; it deleted its ExposedService, and
    // evil/take now holds the name. A Secret with the old certificate admits nobody.
    const old = xsvc('shop', 'old', 'uid-old', '2026-01-01T00:00:00Z', ['bank.example']);
    const oldCert = issue(
      plannedGrants(old, planClaims([gateway], [old], [{ name: 'shop', labels: {} }]).get('shop/old')!.gateways[0]!),
    );
    const taker = xsvc('evil', 'take', 'uid-take', '2026-01-03T00:00:00Z', ['bank.example']);
    const replay = secretFor(old, oldCert); // the tenant re-creates the Secret, owner reference and all
    expect(admit([secretFor(web, good), replay], [web, taker]).serials).toEqual([serial(good)]);
  });

  it('is bounded: past maxAgents the newest services are left out and counted', () => {
    const services = Array.from({ length: 5 }, (_, i) =>
      xsvc('shop', `s${i}`, `uid-${i}`, `2026-01-01T00:00:0${i}Z`, [`s${i}.example`]),
    );
    const plansFor = planClaims([gateway], services, [{ name: 'shop', labels: {} }]);
    const secrets = services.map((s) =>
      secretFor(s, issue(plannedGrants(s, plansFor.get(`shop/${s.metadata.name}`)!.gateways[0]!))),
    );
    const result = admit(secrets, services, 3);
    expect(result.serials).toHaveLength(3);
    expect(result.omitted).toBe(2);
    expect(result.serials).toEqual(
      secrets
        .slice(0, 3)
        .map((s) => serial(Buffer.from(s.data!['eu.crt']!, 'base64').toString()))
        .sort(),
    );
  });
});
