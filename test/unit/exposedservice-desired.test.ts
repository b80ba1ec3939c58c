import { parse } from 'yaml';
import { agentConfigSchema } from '../../src/agent/config.ts';
import { planClaims } from '../../src/controller/exposedservice/claims.ts';
import { desiredExposedService, type AgentCredential } from '../../src/controller/exposedservice/desired.ts';
import type { ExposedService, Gateway } from '../../src/crds/types.ts';

const now = new Date('2026-11-26T12:00:00Z');
const cred: AgentCredential = { certPem: 'CERT', keyPem: 'KEY', caPem: 'CA' };

function gateway(
  name: string,
  over: Partial<Gateway['spec']> = {},
  status: Gateway['status'] = {
    tunnelEndpoints: ['wss://127.0.10.1:8443'],
    addresses: [{ type: 'IPAddress', value: '127.0.10.1' }],
  },
): Gateway {
  return {
    apiVersion: 'webgw.io/v1alpha1',
    kind: 'Gateway',
    metadata: { name },
    spec: {
      domain: `${name}.gw.example.net`,
      placement: {},
      listeners: {
        http: { port: 80 },
        https: { port: 443 },
        tcp: { portRange: { from: 20000, to: 20099 } },
        tunnel: { port: 8443 },
      },
      hostnamePolicy: { external: 'Allowed' },
      ...over,
    },
    status,
  };
}

function service(spec: Partial<ExposedService['spec']> = {}): ExposedService {
  return {
    apiVersion: 'webgw.io/v1alpha1',
    kind: 'ExposedService',
    metadata: {
      name: 'shop',
      namespace: 'tenant',
      uid: 'uid-9',
      generation: 2,
      creationTimestamp: '2026-01-01T00:00:00Z',
    },
    spec: {
      gateways: [{ name: 'eu' }, { name: 'us' }],
      mode: 'Sidecar',
      selector: { app: 'shop' },
      backend: { port: 8080 },
      proxyProtocol: 'V2',
      routes: [
        { protocol: 'HTTP', hostnames: ['shop.example.com'], subdomain: 'shop' },
        { protocol: 'TLS', hostnames: ['db.example.com'], backend: { port: 5432 } },
        { protocol: 'TCP', backend: { port: 6379 } },
      ],
      ...spec,
    },
  };
}

function render(
  svc: ExposedService,
  gateways: Gateway[],
  credentials = new Map([
    ['eu', cred],
    ['us', cred],
  ]),
) {
  const plan = planClaims(gateways, [svc], [{ name: 'tenant', labels: {} }]).get('tenant/shop')!;
  return desiredExposedService({
    service: svc,
    plan,
    gateways: new Map(gateways.map((g) => [g.metadata.name, g])),
    credentials,
    now,
  });
}

describe('ExposedService desired()', () => {
  it('renders an agent config the agent accepts, with per-gateway TCP routes', () => {
    const { secret } = render(service(), [gateway('eu'), gateway('us')]);
    const data = (secret as { stringData: Record<string, string> }).stringData;
    const config = agentConfigSchema.parse(parse(data['agent.yaml']!));
    expect(config.gateways.map((g) => [g.name, g.endpoints, g.serverName, g.certFile])).toEqual([
      ['eu', ['wss://127.0.10.1:8443'], 'eu.gateway.webgw.io', 'eu.crt'],
      ['us', ['wss://127.0.10.1:8443'], 'us.gateway.webgw.io', 'us.crt'],
    ]);
    expect(config.routes).toEqual([
      { protocol: 'http', hostname: 'shop.example.com', backend: '127.0.0.1:8080' },
      { protocol: 'http', hostname: 'shop.eu.gw.example.net', backend: '127.0.0.1:8080' },
      { protocol: 'tls', hostname: 'db.example.com', backend: '127.0.0.1:5432' },
      { protocol: 'tcp', port: 20000, gateway: 'eu', backend: '127.0.0.1:6379' },
      { protocol: 'http', hostname: 'shop.us.gw.example.net', backend: '127.0.0.1:8080' },
      { protocol: 'tcp', port: 20000, gateway: 'us', backend: '127.0.0.1:6379' },
    ]);
    expect(config.proxyProtocol).toBe('v2');
    expect(Object.keys(data).sort()).toEqual([
      'agent.yaml',
      'eu-ca.crt',
      'eu.crt',
      'eu.key',
      'us-ca.crt',
      'us.crt',
      'us.key',
    ]);
    expect((secret as { metadata: { ownerReferences: unknown[] } }).metadata.ownerReferences).toEqual([
      {
        apiVersion: 'webgw.io/v1alpha1',
        kind: 'ExposedService',
        name: 'shop',
        uid: 'uid-9',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  });

  it('points a connector at the Service', () => {
    const { secret } = render(
      service({
        mode: 'Connector',
        backend: { port: 80, service: 'shop-svc' },
        routes: [{ protocol: 'HTTP', hostnames: ['c.example.com'] }],
      }),
      [gateway('eu'), gateway('us')],
    );
    const config = parse((secret as { stringData: Record<string, string> }).stringData['agent.yaml']!) as {
      routes: Array<{ backend: string }>;
    };
    expect(config.routes[0]!.backend).toBe('shop-svc.tenant.svc:80');
  });

  it('reports the URLs and TCP addresses that were granted', () => {
    const { status } = render(service(), [
      gateway('eu'),
      gateway('us', {
        listeners: { http: { port: 8080 }, tcp: { portRange: { from: 30000, to: 30010 } }, tunnel: { port: 8443 } },
      }),
    ]);
    expect(status.endpoints).toEqual([
      {
        gateway: 'eu',
        urls: ['http://shop.example.com', 'http://shop.eu.gw.example.net', 'https://db.example.com'],
        tcp: [{ address: '127.0.10.1', port: 20000, backendPort: 6379 }],
      },
      {
        gateway: 'us',
        urls: ['http://shop.example.com:8080', 'http://shop.us.gw.example.net:8080'],
        tcp: [{ address: '127.0.10.1', port: 30000, backendPort: 6379 }],
      },
    ]);
    expect(status.observedGeneration).toBe(2);
    // No session table read yet: programmed, readiness unknown.
    expect(status.conditions!.map((c) => [c.type, c.status])).toEqual([
      ['ResolvedRefs', 'True'],
      ['Accepted', 'True'],
      ['HostnameConflict', 'False'],
      ['Programmed', 'True'],
      ['Ready', 'Unknown'],
      ['AgentInjected', 'True'],
    ]);
    expect(status.connectedGateways).toBe('0/2');
  });

  it('records an allocated port before the gateway has an address', () => {
    const { status } = render(service(), [gateway('eu', {}, {}), gateway('us', {}, {})]);
    expect(status.endpoints![0]!.tcp).toEqual([{ port: 20000, backendPort: 6379 }]);
    expect(status.conditions!.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'NoTunnelEndpoint',
    });
    expect(status.conditions!.find((c) => c.type === 'Programmed')).toMatchObject({
      status: 'False',
      reason: 'NoTunnelEndpoint',
    });
  });

  it('names the selected pods that run without the agent', () => {
    const gateways = [gateway('eu'), gateway('us')];
    const svc = service();
    const plan = planClaims(gateways, [svc], [{ name: 'tenant', labels: {} }]).get('tenant/shop')!;
    const pods = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7'];
    const { status } = desiredExposedService({
      service: svc,
      plan,
      gateways: new Map(gateways.map((g) => [g.metadata.name, g])),
      credentials: new Map([['eu', cred]]),
      podsWithoutAgent: pods,
      now,
    });
    expect(status.conditions!.find((c) => c.type === 'AgentInjected')).toMatchObject({
      status: 'False',
      reason: 'PodsWithoutAgent',
    });
    expect(status.conditions!.find((c) => c.type === 'AgentInjected')!.message).toMatch(
      /^7 selected pod\(s\) run without the agent .*restart them: p1, p2, p3, p4, p5, and 2 more$/,
    );
  });

  it('says which gateways are missing', () => {
    const { status } = render(service(), [gateway('eu')]);
    expect(status.conditions!.find((c) => c.type === 'ResolvedRefs')).toMatchObject({
      status: 'False',
      reason: 'GatewayNotFound',
      message: 'Gateway(s) not found: us',
    });
  });

  it('says Programmed=False with what the API server answered when writing failed, and keeps the rest', () => {
    const gateways = [gateway('eu'), gateway('us')];
    const svc = service();
    const plan = planClaims(gateways, [svc], [{ name: 'tenant', labels: {} }]).get('tenant/shop')!;
    const inputs = { service: svc, plan, gateways: new Map(gateways.map((g) => [g.metadata.name, g])), now };
    const ok = desiredExposedService({ ...inputs, credentials: new Map([['eu', cred]]) }).status;
    const failed = desiredExposedService({
      ...inputs,
      credentials: new Map([['eu', cred]]),
      applyError: 'ERR_KUBE: 500 etcdserver: request timed out',
    }).status;
    expect(failed.conditions!.find((c) => c.type === 'Programmed')).toMatchObject({
      status: 'False',
      reason: 'ApplyFailed',
      message: 'ERR_KUBE: 500 etcdserver: request timed out',
    });
    expect(ok.conditions!.find((c) => c.type === 'Programmed')).toMatchObject({ status: 'True' });
    expect(failed.endpoints).toEqual(ok.endpoints);
    expect(failed.conditions!.find((c) => c.type === 'Accepted')).toEqual(
      ok.conditions!.find((c) => c.type === 'Accepted'),
    );
  });
});
