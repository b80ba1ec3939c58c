/**
 * ACME as the controller plans it (issue 16, mode 2): which names a Gateway orders (only what
 * the claims plan accepted, never a wildcard or a name its domain certificate covers, bounded
 * per Gateway and per namespace), which stored certificates count, and what a tenant sees.
 */
import { acmeWanted, MAX_ACME_CERTIFICATES_PER_NAMESPACE } from '../../src/controller/acme/wanted.ts';
import { ACME_HOSTNAME_ANNOTATION, readAcmeCertificate } from '../../src/controller/acme/certificates.ts';
import { planClaims, type GatewayPlan, type ServicePlan } from '../../src/controller/exposedservice/claims.ts';
import { endpointCertificates, serviceCertificateCondition } from '../../src/controller/exposedservice/certificates.ts';
import { gatewayServesHttps } from '../../src/controller/gateway/served-certificate.ts';
import type { ExposedService, Gateway, GatewayStatus } from '../../src/crds/types.ts';
import { createCA, issueServerCertificate } from '../../src/pki/issue.ts';

const HOUR = 3600_000;
const now = new Date();
const at = (h: number): Date => new Date(now.getTime() + h * HOUR);

function gateway(spec: Partial<Gateway['spec']> = {}, status?: GatewayStatus): Gateway {
  return {
    apiVersion: 'webgw.io/v1alpha1',
    kind: 'Gateway',
    metadata: { name: 'eu', uid: 'u', generation: 1 },
    spec: {
      domain: 'eu.example.net',
      placement: {},
      hostnamePolicy: { external: 'Allowed', wildcards: 'Allowed' },
      listeners: { http: { port: 80 }, https: { port: 443 }, tunnel: { port: 8443 } },
      acme: { directoryUrl: 'https://acme.example/dir' },
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

let created = 0;
const xsvc = (namespace: string, name: string, hostnames: string[]): ExposedService => ({
  apiVersion: 'webgw.io/v1alpha1',
  kind: 'ExposedService',
  metadata: {
    name,
    namespace,
    uid: `${namespace}-${name}`,
    creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, created++)).toISOString(),
  },
  spec: {
    gateways: [{ name: 'eu' }],
    mode: 'Sidecar',
    selector: { app: name },
    backend: { port: 8080 },
    routes: [{ protocol: 'HTTP', hostnames }],
    proxyProtocol: 'None',
  },
});

const tlsTerminate = (namespace: string, name: string, hostname: string): ExposedService => {
  const s = xsvc(namespace, name, []);
  s.spec.routes = [{ protocol: 'TLS', hostnames: [hostname], termination: 'Terminate' }];
  return s;
};

function plans(gw: Gateway, services: ExposedService[]): ServicePlan[] {
  const namespaces = [...new Set(services.map((s) => s.metadata.namespace ?? ''))].map((name) => ({
    name,
    labels: {},
  }));
  return [...planClaims([gw], services, namespaces).values()];
}

describe('acmeWanted', () => {
  it.each<[string, Partial<Gateway['spec']>, GatewayStatus | undefined, ExposedService[], string[]]>([
    [
      'own names of accepted claims',
      {},
      undefined,
      [xsvc('a', 'web', ['shop.a.example', 'www.a.example'])],
      ['shop.a.example', 'www.a.example'],
    ],
    ['no spec.acme: nothing', { acme: undefined }, undefined, [xsvc('a', 'web', ['shop.a.example'])], []],
    [
      'no http listener: nothing (HTTP-01 is answered there)',
      { listeners: { https: { port: 443 }, tunnel: { port: 8443 } } },
      undefined,
      [xsvc('a', 'web', ['shop.a.example'])],
      [],
    ],
    ['never a wildcard', {}, undefined, [xsvc('a', 'web', ['*.a.example', 'shop.a.example'])], ['shop.a.example']],
    [
      'a TLS route terminated at the gateway: ordered while awaiting it',
      {},
      undefined,
      [tlsTerminate('a', 'db', 'db.a.example')],
      ['db.a.example'],
    ],
    [
      'a name held by an older claim is ordered once, for its holder',
      {},
      undefined,
      [xsvc('a', 'web', ['shop.a.example']), xsvc('b', 'thief', ['shop.a.example', 'b.example'])],
      ['shop.a.example', 'b.example'],
    ],
    [
      'a name the policy refuses is never ordered',
      { hostnamePolicy: { external: 'Forbidden' } },
      undefined,
      [xsvc('a', 'web', ['shop.a.example', 'web.eu.example.net'])],
      ['web.eu.example.net'],
    ],
    [
      'names the domain certificate covers are not ordered',
      {},
      {
        certificate: { secret: 'c/w', names: ['*.eu.example.net'], notAfter: at(9).toISOString(), issuer: 'CN=x' },
        conditions: [
          {
            type: 'CertificateReady',
            status: 'True',
            reason: 'CertificateIssued',
            message: '',
            lastTransitionTime: now.toISOString(),
          },
        ],
      },
      [xsvc('a', 'web', ['web.eu.example.net', 'shop.a.example'])],
      ['shop.a.example'],
    ],
  ])('%s', (_what, spec, status, services, expected) => {
    const gw = gateway(spec, status);
    expect([...acmeWanted(gw, plans(gw, services)).names.keys()].sort()).toEqual([...expected].sort());
  });

  it('bounds one namespace, and says which names it left out', () => {
    const gw = gateway();
    const names = Array.from({ length: MAX_ACME_CERTIFICATES_PER_NAMESPACE + 3 }, (_, i) => `h${i}.a.example`);
    const services = [
      xsvc('a', 'many', names.slice(0, 16)),
      xsvc('a', 'more', names.slice(16)),
      xsvc('b', 'other', ['b.example']),
    ];
    const wanted = acmeWanted(gw, plans(gw, services));
    expect([...wanted.names.values()].filter((k) => k.startsWith('a/'))).toHaveLength(
      MAX_ACME_CERTIFICATES_PER_NAMESPACE,
    );
    expect(wanted.names.get('b.example')).toBe('b/other');
    expect(wanted.omitted).toHaveLength(3);
  });
});

describe('readAcmeCertificate', () => {
  const ca = createCA('acme CA', { notAfter: at(100) });
  const secret = (hostname: string | undefined, certPem: string, keyPem: string) => ({
    metadata: {
      name: 'webgw-gw-eu-acme-0123456789abcdef',
      ...(hostname ? { annotations: { [ACME_HOSTNAME_ANNOTATION]: hostname } } : {}),
    },
    data: { 'tls.crt': Buffer.from(certPem).toString('base64'), 'tls.key': Buffer.from(keyPem).toString('base64') },
  });
  const good = issueServerCertificate(ca, ['shop.a.example'], { notBefore: at(-1), notAfter: at(2) });
  it.each([
    [
      'a pair for its name: renewed two thirds in',
      secret('shop.a.example', good.certPem, good.keyPem),
      at(1)
        .toISOString()
        .replace(/\.\d{3}Z$/, 'Z'),
    ],
    ['no hostname annotation', secret(undefined, good.certPem, good.keyPem), undefined],
    ['another name', secret('other.a.example', good.certPem, good.keyPem), undefined],
    [
      'a foreign key',
      secret('shop.a.example', good.certPem, issueServerCertificate(ca, ['x.example'], { notAfter: at(1) }).keyPem),
      undefined,
    ],
    [
      'expired',
      (() => {
        const c = issueServerCertificate(ca, ['shop.a.example'], { notBefore: at(-3), notAfter: at(-1) });
        return secret('shop.a.example', c.certPem, c.keyPem);
      })(),
      undefined,
    ],
    ['garbage', secret('shop.a.example', 'nope', 'nope'), undefined],
  ])('%s', (_what, s, renewAt) => {
    const read = readAcmeCertificate(s, now);
    expect(read?.status.renewAt).toBe(renewAt);
  });
});

describe('what a tenant sees', () => {
  const gp: GatewayPlan = {
    gateway: 'eu',
    accepted: true,
    http: ['pending.a.example', 'failed.a.example'],
    https: ['ready.a.example'],
    tls: [],
    tlsTerminated: [],
    awaitingCertificate: ['db.a.example'],
    tcp: [],
    h2c: [],
    conflicts: [],
    refused: [],
  };
  const status: GatewayStatus = {
    acme: {
      certificates: [
        {
          hostname: 'ready.a.example',
          notAfter: at(90).toISOString(),
          renewAt: at(60).toISOString(),
          issuer: 'CN=Pebble',
        },
      ],
      failures: [
        {
          hostname: 'failed.a.example',
          problem: 'urn:ietf:params:acme:error:rateLimited: too many',
          attempts: 3,
          retryAt: at(1).toISOString(),
        },
      ],
    },
  };

  it('lists each certificate with its state, and a condition that names what is missing', () => {
    const certificates = endpointCertificates(gp, gateway({}, status));
    expect(certificates).toEqual([
      expect.objectContaining({ names: ['ready.a.example'], state: 'Ready', source: 'ACME', issuer: 'CN=Pebble' }),
      expect.objectContaining({
        names: ['pending.a.example'],
        state: 'Pending',
        message: 'ordering from https://acme.example/dir',
      }),
      expect.objectContaining({
        names: ['failed.a.example'],
        state: 'Failed',
        message: expect.stringContaining('rateLimited'),
      }),
      expect.objectContaining({ names: ['db.a.example'], state: 'Pending' }),
    ]);
    const condition = serviceCertificateCondition([{ gateway: 'eu', certificates }]);
    expect(condition).toMatchObject({
      status: 'False',
      reason: 'CertificateFailed',
      message: expect.stringMatching(/failed\.a\.example on eu: .*rateLimited.*attempt 3.*pending\.a\.example on eu/),
    });
    expect(serviceCertificateCondition([{ gateway: 'eu', certificates: certificates.slice(0, 1) }])).toMatchObject({
      status: 'True',
      reason: 'CertificateIssued',
    });
    expect(serviceCertificateCondition([{ gateway: 'eu', certificates: [] }])).toBeUndefined();
  });

  it('holds a terminated TLS name without serving it until its certificate is issued, then grants it', () => {
    const service = tlsTerminate('a', 'db', 'db.a.example');
    const waiting = plans(gateway(), [service])[0]!.gateways[0]!;
    expect(waiting).toMatchObject({ tlsTerminated: [], awaitingCertificate: ['db.a.example'], refused: [] });
    const issued = gateway(
      {},
      {
        acme: {
          certificates: [
            { hostname: 'db.a.example', notAfter: at(9).toISOString(), renewAt: at(6).toISOString(), issuer: 'CN=x' },
          ],
        },
      },
    );
    expect(plans(issued, [service])[0]!.gateways[0]).toMatchObject({
      tlsTerminated: ['db.a.example'],
      awaitingCertificate: [],
    });
    // Without spec.acme the route is refused, as before.
    expect(plans(gateway({ acme: undefined }), [service])[0]!.gateways[0]!.refused[0]?.why).toContain(
      'no certificate for db.a.example',
    );
  });

  it('gives https grants only for names with a certificate', () => {
    expect(gatewayServesHttps(status, 'ready.a.example')).toBe(true);
    expect(gatewayServesHttps(status, 'failed.a.example')).toBe(false);
  });
});
