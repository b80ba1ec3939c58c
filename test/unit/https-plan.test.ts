/**
 * HTTPS at the gateway, as the controller plans it (issue 16): the farmer's certificate is
 * checked (inspectCertificate), reported on the Gateway and copied to the proxies (desiredGateway),
 * and decides which names get https grants, with or without a redirect (planClaims).
 */
import { parse } from 'yaml';
import { planClaims, type NamespaceInfo } from '../../src/controller/exposedservice/claims.ts';
import { desiredGateway } from '../../src/controller/gateway/status.ts';
import { gatewayServesHttps, inspectCertificate } from '../../src/controller/gateway/served-certificate.ts';
import type { ExposedService, Gateway, GatewayStatus } from '../../src/crds/types.ts';
import { createCA, issueServerCertificate } from '../../src/pki/issue.ts';
import { gatewayConfigSchema } from '../../src/proxy/config.ts';

const HOUR = 3600_000;
const now = new Date();
const at = (h: number): Date => new Date(now.getTime() + h * HOUR);
const ca = createCA('public CA', { notAfter: at(100) });
const ref = { name: 'wildcard', namespace: 'certs' };
const tlsSecret = (certPem: string, keyPem: string) => ({
  data: { 'tls.crt': Buffer.from(certPem).toString('base64'), 'tls.key': Buffer.from(keyPem).toString('base64') },
});
const wildcard = issueServerCertificate(ca, ['*.eu1.gw.example.net'], { notAfter: at(48) });

describe('inspectCertificate', () => {
  it.each([
    [
      'the wildcard of the domain',
      tlsSecret(wildcard.certPem, wildcard.keyPem),
      true,
      /serving \*\.eu1\.gw\.example\.net until/,
    ],
    ['no Secret', undefined, false, /does not exist/],
    [
      'a Secret without tls.key',
      { data: { 'tls.crt': Buffer.from(wildcard.certPem).toString('base64') } },
      false,
      /no tls\.crt and tls\.key/,
    ],
    [
      'a key of another certificate',
      tlsSecret(wildcard.certPem, issueServerCertificate(ca, ['x.test'], { notAfter: at(1) }).keyPem),
      false,
      /does not belong/,
    ],
    [
      'an expired certificate',
      (() => {
        const c = issueServerCertificate(ca, ['*.eu1.gw.example.net'], { notBefore: at(-3), notAfter: at(-1) });
        return tlsSecret(c.certPem, c.keyPem);
      })(),
      false,
      /is valid from/,
    ],
    [
      'a certificate for another domain',
      (() => {
        const c = issueServerCertificate(ca, ['*.other.example'], { notAfter: at(1) });
        return tlsSecret(c.certPem, c.keyPem);
      })(),
      false,
      /does not cover \*\.eu1\.gw\.example\.net/,
    ],
    ['garbage', tlsSecret('nope', 'nope'), false, /certs\/wildcard: .*PEM/],
  ])('%s', (_what, secret, ready, message) => {
    const result = inspectCertificate(secret, ref, 'eu1.gw.example.net', now);
    expect(result.ready).toBe(ready);
    expect(result.message).toMatch(message);
  });
});

function gw(status?: GatewayStatus, listeners: Partial<Gateway['spec']['listeners']> = {}): Gateway {
  return {
    apiVersion: 'webgw.io/v1alpha1',
    kind: 'Gateway',
    metadata: { name: 'eu', uid: 'u', generation: 1 },
    spec: {
      domain: 'eu1.gw.example.net',
      placement: {},
      tls: { certificateRef: ref },
      hostnamePolicy: { external: 'Allowed' },
      listeners: { http: { port: 80 }, https: { port: 443 }, tunnel: { port: 8443 }, ...listeners },
    },
    ...(status ? { status } : {}),
  };
}

const ready: GatewayStatus = {
  certificate: {
    secret: 'certs/wildcard',
    names: ['*.eu1.gw.example.net'],
    notAfter: at(48).toISOString(),
    issuer: 'CN=public CA',
  },
  conditions: [
    {
      type: 'CertificateReady',
      status: 'True',
      reason: 'CertificateIssued',
      message: '',
      lastTransitionTime: now.toISOString(),
    },
  ],
};
const namespaces: NamespaceInfo[] = [{ name: 'a', labels: {} }];
const xsvc = (routes: ExposedService['spec']['routes']): ExposedService => ({
  apiVersion: 'webgw.io/v1alpha1',
  kind: 'ExposedService',
  metadata: { name: 's', namespace: 'a', creationTimestamp: '2026-01-01T00:00:00Z', uid: 'x' },
  spec: {
    gateways: [{ name: 'eu' }],
    mode: 'Sidecar',
    selector: { app: 's' },
    backend: { port: 8080 },
    routes,
    proxyProtocol: 'None',
  },
});

describe('planClaims with a gateway that terminates HTTPS', () => {
  it.each<[string, Gateway, ExposedService['spec']['routes'], Record<string, string[]>, RegExp | undefined]>([
    [
      'a subdomain its certificate covers: https only (plain HTTP redirects)',
      gw(ready),
      [{ protocol: 'HTTP', subdomain: 'web' }],
      { http: [], https: ['web.eu1.gw.example.net'] },
      undefined,
    ],
    [
      'redirect: false serves plain HTTP too',
      gw(ready),
      [{ protocol: 'HTTP', subdomain: 'web', redirect: false }],
      { http: ['web.eu1.gw.example.net'], https: ['web.eu1.gw.example.net'] },
      undefined,
    ],
    [
      'a name the certificate does not cover: plain HTTP',
      gw(ready),
      [{ protocol: 'HTTP', hostnames: ['shop.example.com'] }],
      { http: ['shop.example.com'], https: [] },
      undefined,
    ],
    [
      'a certificate not ready: plain HTTP',
      gw({ ...ready, conditions: [{ ...ready.conditions![0]!, status: 'False' }] }),
      [{ protocol: 'HTTP', subdomain: 'web' }],
      { http: ['web.eu1.gw.example.net'], https: [] },
      undefined,
    ],
    [
      'no https listener: plain HTTP',
      gw(ready, { https: undefined }),
      [{ protocol: 'HTTP', subdomain: 'web' }],
      { http: ['web.eu1.gw.example.net'], https: [] },
      undefined,
    ],
    [
      'no http listener, redirect: false: https only',
      gw(ready, { http: undefined }),
      [{ protocol: 'HTTP', subdomain: 'web', redirect: false }],
      { http: [], https: ['web.eu1.gw.example.net'] },
      undefined,
    ],
    [
      'TLS Terminate under the domain',
      gw(ready),
      [{ protocol: 'TLS', subdomain: 'db', termination: 'Terminate' }],
      { tls: [], tlsTerminated: ['db.eu1.gw.example.net'] },
      undefined,
    ],
    [
      'TLS Terminate without a certificate: refused, with why',
      gw(),
      [{ protocol: 'TLS', subdomain: 'db', termination: 'Terminate' }],
      { tls: [], tlsTerminated: [] },
      /no certificate for db\.eu1\.gw\.example\.net/,
    ],
    [
      'TLS passthrough stays passthrough',
      gw(ready),
      [{ protocol: 'TLS', subdomain: 'db' }],
      { tls: ['db.eu1.gw.example.net'], tlsTerminated: [] },
      undefined,
    ],
  ])('%s', (_what, gateway, routes, expected, refused) => {
    const plan = planClaims([gateway], [xsvc(routes)], namespaces).get('a/s')!.gateways[0]!;
    expect(plan).toMatchObject(expected);
    if (refused) expect(plan.refused.map((r) => r.why).join()).toMatch(refused);
    else expect(plan.refused).toEqual([]);
  });

  it('reads readiness from the status the controller wrote', () => {
    expect(gatewayServesHttps(ready, 'a.eu1.gw.example.net')).toBe(true);
    expect(gatewayServesHttps(ready, 'a.b.eu1.gw.example.net')).toBe(false);
    expect(gatewayServesHttps(undefined, 'a.eu1.gw.example.net')).toBe(false);
  });
});

describe('desiredGateway with spec.tls', () => {
  const base = {
    namespace: 'webgw-system',
    image: 'webgw:test',
    credentials: { caPem: 'C', certPem: 'S', keyPem: 'K' },
    pods: [],
    nodes: [],
    desiredReplicas: 0,
    admittedAgents: [],
    now,
  };
  type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const secretOf = (objects: Obj[]): Obj =>
    objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'webgw-gw-eu-certs')!;

  it('copies a good certificate to the proxies, reports it and says CertificateReady=True', () => {
    const certificate = inspectCertificate(
      tlsSecret(wildcard.certPem, wildcard.keyPem),
      ref,
      'eu1.gw.example.net',
      now,
    );
    const d = desiredGateway({ ...base, gateway: gw(), certificate });
    expect(secretOf(d.objects).data).toEqual({
      'domain.crt': Buffer.from(wildcard.certPem).toString('base64'),
      'domain.key': Buffer.from(wildcard.keyPem).toString('base64'),
    });
    expect(d.status.certificate).toMatchObject({ secret: 'certs/wildcard', names: ['*.eu1.gw.example.net'] });
    expect(d.status.conditions?.find((c) => c.type === 'CertificateReady')).toMatchObject({
      status: 'True',
      reason: 'CertificateIssued',
    });
    const config = gatewayConfigSchema.parse(
      parse((d.objects as Obj[]).find((o) => o.kind === 'ConfigMap' && o.data['gateway.yaml'])!.data['gateway.yaml']),
    );
    expect(config.listeners.https?.certificatesDir).toBe('certs');
    // Renewal does not roll the pods: the certificate is not in the template's hash.
    const renewed = issueServerCertificate(ca, ['*.eu1.gw.example.net'], { notAfter: at(72) });
    const again = desiredGateway({
      ...base,
      gateway: gw(),
      certificate: inspectCertificate(tlsSecret(renewed.certPem, renewed.keyPem), ref, 'eu1.gw.example.net', now),
    });
    const hashOf = (x: typeof d): string =>
      (x.objects as Obj[]).find((o) => o.kind === 'DaemonSet')!.spec.template.metadata.annotations[
        'webgw.io/config-hash'
      ];
    expect(hashOf(again)).toBe(hashOf(d));
  });

  it('serves nothing of a bad certificate and says why; drops the status entry', () => {
    const bad = inspectCertificate(undefined, ref, 'eu1.gw.example.net', now);
    const d = desiredGateway({ ...base, gateway: gw(ready), certificate: bad });
    expect(secretOf(d.objects).data).toEqual({});
    expect(d.status.certificate).toBeUndefined();
    expect(d.status.conditions?.find((c) => c.type === 'CertificateReady')).toMatchObject({
      status: 'False',
      reason: 'SecretNotFound',
      message: expect.stringContaining('certs/wildcard'),
    });
  });

  it('has no CertificateReady condition without spec.tls', () => {
    const { tls: _tls, ...spec } = gw().spec;
    const d = desiredGateway({ ...base, gateway: { ...gw(ready), spec } });
    expect(d.status.conditions?.some((c) => c.type === 'CertificateReady')).toBe(false);
  });
});
