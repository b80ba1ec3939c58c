/**
 * TLS routes the agents terminate (termination: Agent): which names are planned and refused,
 * what the reconciler's gather step orders and reports (agent-certificates.ts), and what the
 * credential Secret and agent config carry (desired.ts). Tables over pure functions; the orders
 * are recorded by a stand-in for AgentOrders.
 */
import { parse } from 'yaml';
import { agentConfigSchema } from '../../src/agent/config.ts';
import type { AgentOrderRequest, AgentOrders } from '../../src/controller/acme/agent-orders.ts';
import { MAX_ACME_CERTIFICATES_PER_NAMESPACE } from '../../src/controller/acme/wanted.ts';
import { agentCertificates } from '../../src/controller/exposedservice/agent-certificates.ts';
import { agentAlpn, agentTerminatedNames, agentTlsFiles } from '../../src/controller/exposedservice/agent-tls.ts';
import { planClaims, type ServicePlan } from '../../src/controller/exposedservice/claims.ts';
import { desiredExposedService } from '../../src/controller/exposedservice/desired.ts';
import type { AcmeFailureStatus, ExposedService, Gateway } from '../../src/crds/types.ts';
import { createCA, issueServerCertificate } from '../../src/pki/issue.ts';

const now = new Date('2026-12-07T12:00:00Z');
const acme = { directoryUrl: 'https://acme.example/dir' };

function gateway(name: string, withAcme = true): Gateway {
  return {
    apiVersion: 'webgw.io/v1alpha1',
    kind: 'Gateway',
    metadata: { name, uid: `uid-${name}` },
    spec: {
      domain: `${name}.gw.example.net`,
      placement: {},
      listeners: { http: { port: 80 }, https: { port: 443 }, tunnel: { port: 8443 } },
      hostnamePolicy: { external: 'Allowed' },
      ...(withAcme ? { acme } : {}),
    },
    status: { tunnelEndpoints: [`wss://${name}:8443`], addresses: [{ type: 'IPAddress', value: '198.18.0.1' }] },
  };
}

function service(name: string, hostnames: string[], created = '2026-01-01T00:00:00Z'): ExposedService {
  return {
    apiVersion: 'webgw.io/v1alpha1',
    kind: 'ExposedService',
    metadata: { name, namespace: 'tenant', uid: `uid-${name}`, generation: 1, creationTimestamp: created },
    spec: {
      gateways: [{ name: 'us' }, { name: 'eu' }],
      mode: 'Sidecar',
      selector: { app: name },
      backend: { port: 8080 },
      proxyProtocol: 'None',
      routes: [
        { protocol: 'TLS', hostnames, termination: 'Agent' },
        { protocol: 'TLS', hostnames: ['plain.example.com'] },
      ],
    },
  };
}

class RecordingOrders {
  readonly requests: AgentOrderRequest[] = [];
  readonly writtenCerts: string[] = [];
  failuresList: AcmeFailureStatus[] = [];
  issued = new Map<string, { certPem: string; keyPem: string }>();
  challenges = new Map<string, string>();
  request(r: AgentOrderRequest): void {
    this.requests.push(r);
  }
  previous: readonly AcmeFailureStatus[] = [];
  /** As the issuer: the failures it holds, seeded once with those the status showed. */
  failures(_s: string, _w: unknown, previous: readonly AcmeFailureStatus[] = []): AcmeFailureStatus[] {
    this.previous = previous;
    return this.failuresList.length > 0 ? this.failuresList : [...previous];
  }
  issuedPair(_s: string, h: string) {
    return this.issued.get(h);
  }
  challenge(_s: string, h: string) {
    return this.challenges.get(h);
  }
  written(_s: string, _h: string, cert: string): void {
    this.writtenCerts.push(cert);
  }
  ordering(): boolean {
    return false;
  }
  forget(): void {}
}

const ca = createCA('test ACME CA', {
  notBefore: new Date('2026-12-01T00:00:00Z'),
  notAfter: new Date('2027-12-01T00:00:00Z'),
});
/** Valid 2026-12-01 .. 2026-12-31: renewal due from 2026-12-21. */
const fresh = issueServerCertificate(ca, ['a.example.com'], {
  notBefore: new Date('2026-12-01T00:00:00Z'),
  notAfter: new Date('2026-12-31T00:00:00Z'),
});
/** Valid 2026-11-20 .. 2026-12-10: past two thirds of its life. */
const ageing = issueServerCertificate(ca, ['a.example.com'], {
  notBefore: new Date('2026-11-20T00:00:00Z'),
  notAfter: new Date('2026-12-10T00:00:00Z'),
});

function setup(services: ExposedService[], gateways = [gateway('us'), gateway('eu')]) {
  const plans = planClaims(gateways, services, [{ name: 'tenant', labels: {} }]);
  return { plans, gateways: new Map(gateways.map((g) => [g.metadata.name, g])) };
}

function gather(
  svc: ExposedService,
  orders: RecordingOrders,
  secretData: Record<string, string> = {},
  others: ExposedService[] = [],
) {
  const { plans, gateways } = setup([svc, ...others]);
  return agentCertificates({
    service: svc,
    plan: plans.get(`tenant/${svc.metadata.name}`) as ServicePlan,
    plans,
    neighbours: [svc, ...others],
    gateways,
    current: {
      metadata: { name: 'webgw-agent-x' },
      data: Object.fromEntries(Object.entries(secretData).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    },
    agents: 3,
    httpsTargets: (g) => [{ address: `${g}.replica`, port: 443 }],
    orders: orders as unknown as AgentOrders,
    now,
  });
}

describe('TLS terminated at the agent: plan', () => {
  it('passes the name through on Gateways with spec.acme and refuses it, saying why, elsewhere', () => {
    const { plans } = setup(
      [service('web', ['a.example.com', '*.wild.example.com'])],
      [gateway('us'), gateway('eu', false)],
    );
    const plan = plans.get('tenant/web')!;
    const us = plan.gateways.find((g) => g.gateway === 'us')!;
    const eu = plan.gateways.find((g) => g.gateway === 'eu')!;
    expect(us.tls).toEqual(['a.example.com', 'plain.example.com']);
    expect(us.refused.map((r) => r.hostname)).toEqual(['*.wild.example.com']);
    expect(eu.tls).toEqual(['plain.example.com']);
    expect(eu.refused.map((r) => r.why).join()).toContain('termination: Agent needs spec.acme');
    expect([...agentTerminatedNames(service('web', ['a.example.com', '*.wild.example.com']), plan)]).toEqual([
      ['a.example.com', ['us']],
    ]);
  });
});

describe('TLS terminated at the agent: gather', () => {
  it('orders a name without a certificate under the first Gateway by name, validated through every gateway passing it', () => {
    const orders = new RecordingOrders();
    const { names } = gather(service('web', ['a.example.com']), orders);
    expect(names.get('a.example.com')?.status).toMatchObject({
      state: 'Pending',
      terminatedBy: 'Agent',
      source: 'ACME',
    });
    expect(orders.requests).toHaveLength(1);
    expect(orders.requests[0]).toMatchObject({ service: 'tenant/web', hostnames: ['a.example.com'], agents: 3 });
    expect(orders.requests[0]!.account.metadata.name).toBe('eu');
    expect(
      orders.requests[0]!.targets()
        .map((t) => t.address)
        .sort(),
    ).toEqual(['eu.replica', 'us.replica']);
  });

  const files = agentTlsFiles('a.example.com');
  it.each([
    [
      'a fresh pair in the Secret',
      { [files.certFile]: fresh.certPem, [files.keyFile]: fresh.keyPem },
      'Ready',
      0,
      Date.parse('2026-12-21T00:00:00Z'),
    ],
    [
      'a pair past two thirds of its life',
      { [files.certFile]: ageing.certPem, [files.keyFile]: ageing.keyPem },
      'Ready',
      1,
      Date.parse('2026-12-03T08:00:00Z'),
    ],
    [
      'a certificate with another key',
      { [files.certFile]: fresh.certPem, [files.keyFile]: ageing.keyPem },
      'Pending',
      1,
      Infinity,
    ],
  ])('%s: %#', (_what, data, state, ordered, nextLook) => {
    const orders = new RecordingOrders();
    const out = gather(service('web', ['a.example.com']), orders, data);
    expect(out.names.get('a.example.com')?.status.state).toBe(state);
    expect(orders.requests).toHaveLength(ordered);
    if (Number.isFinite(nextLook)) expect(Math.abs(out.nextLook - nextLook)).toBeLessThan(1000);
    else expect(out.nextLook).toBe(Infinity);
  });

  it('carries a pair issued but not yet written, and forgets it once the Secret holds it', () => {
    const orders = new RecordingOrders();
    orders.issued.set('a.example.com', fresh);
    expect(gather(service('web', ['a.example.com']), orders).names.get('a.example.com')).toMatchObject({
      certPem: fresh.certPem,
      keyPem: fresh.keyPem,
      status: { state: 'Ready' },
    });
    expect(orders.requests).toHaveLength(0);
    gather(service('web', ['a.example.com']), orders, {
      [files.certFile]: fresh.certPem,
      [files.keyFile]: fresh.keyPem,
    });
    expect(orders.writtenCerts).toEqual([fresh.certPem]);
  });

  it('reports a failed order with the ACME problem and looks again at its retry time', () => {
    const orders = new RecordingOrders();
    orders.failuresList = [
      {
        hostname: 'a.example.com',
        problem: 'urn:ietf:params:acme:error:connection',
        attempts: 2,
        retryAt: '2026-12-07T12:05:00Z',
      },
    ];
    const out = gather(service('web', ['a.example.com']), orders);
    expect(out.names.get('a.example.com')?.status).toMatchObject({
      state: 'Failed',
      message: expect.stringContaining('attempt 2; next at 2026-12-07T12:05:00Z'),
    });
    expect(out.nextLook).toBe(Date.parse('2026-12-07T12:05:00Z'));
  });

  it('puts the backoff in the status, and a new leader resumes it from there, the message unchanged', () => {
    const orders = new RecordingOrders();
    orders.failuresList = [
      {
        hostname: 'a.example.com',
        problem: 'urn:ietf:params:acme:error:unauthorized',
        attempts: 3,
        retryAt: '2026-12-07T13:00:00Z',
      },
    ];
    const first = gather(service('web', ['a.example.com']), orders).names.get('a.example.com')!.status;
    expect(first).toMatchObject({ state: 'Failed', attempts: 3, retryAt: '2026-12-07T13:00:00Z' });
    // A new leader: nothing in memory, the status as the old one wrote it.
    const restarted = new RecordingOrders();
    const svc = {
      ...service('web', ['a.example.com']),
      status: { endpoints: [{ gateway: 'us', certificates: [first] }] },
    };
    const again = gather(svc, restarted).names.get('a.example.com')!.status;
    expect(restarted.previous).toEqual(orders.failuresList);
    expect(again).toEqual(first);
  });

  it('publishes the pending challenge and says so', () => {
    const orders = new RecordingOrders();
    orders.challenges.set('a.example.com', 'CHALLENGE PEM');
    const out = gather(service('web', ['a.example.com']), orders);
    expect(out.names.get('a.example.com')).toMatchObject({
      challengePem: 'CHALLENGE PEM',
      status: { state: 'Pending', message: expect.stringContaining('challenge published') },
    });
  });

  it(`orders at most ${MAX_ACME_CERTIFICATES_PER_NAMESPACE} names per namespace, older services first`, () => {
    const older = service(
      'old',
      Array.from({ length: MAX_ACME_CERTIFICATES_PER_NAMESPACE - 1 }, (_, i) => `o${i}.example.com`),
      '2026-01-01T00:00:00Z',
    );
    const newer = service('new', ['n1.example.com', 'n2.example.com'], '2026-02-01T00:00:00Z');
    const orders = new RecordingOrders();
    const out = gather(newer, orders, {}, [older]);
    expect(out.names.get('n1.example.com')?.status.state).toBe('Pending');
    expect(out.names.get('n2.example.com')?.status).toMatchObject({
      state: 'Failed',
      message: expect.stringContaining('holds the most'),
    });
    expect(orders.requests.flatMap((r) => r.hostnames)).toEqual(['n1.example.com']);
  });
});

describe('TLS terminated at the agent: the credential Secret', () => {
  it.each([
    [undefined, {}],
    ['HTTP1', { alpn: ['http/1.1'], forwardedHeaders: true }],
    ['H2C', { alpn: ['h2'] }],
  ] as const)('backendProtocol %s offers ALPN %j', (backendProtocol, alpn) => {
    expect(
      agentAlpn({
        protocol: 'TLS',
        termination: 'Agent',
        hostnames: ['a.example.com'],
        ...(backendProtocol ? { backendProtocol } : {}),
      }),
    ).toEqual(alpn);
  });

  it('points the agent at the files, carries them, and shows the certificate in the status', () => {
    const svc = service('web', ['a.example.com']);
    const { plans, gateways } = setup([svc]);
    const files = agentTlsFiles('a.example.com');
    const agentTls = new Map([
      [
        'a.example.com',
        {
          ...fresh,
          challengePem: 'CH',
          status: {
            names: ['a.example.com'],
            state: 'Ready' as const,
            source: 'ACME' as const,
            terminatedBy: 'Agent' as const,
          },
        },
      ],
    ]);
    const cred = { certPem: 'C', keyPem: 'K', caPem: 'CA' };
    const { secret, status } = desiredExposedService({
      service: svc,
      plan: plans.get('tenant/web')!,
      gateways,
      credentials: new Map([
        ['us', cred],
        ['eu', cred],
      ]),
      agentTls,
      now,
    });
    const data = (secret as { stringData: Record<string, string> }).stringData;
    const config = agentConfigSchema.parse(parse(data['agent.yaml']!));
    expect(config.routes).toEqual([
      { protocol: 'tls', hostname: 'a.example.com', backend: '127.0.0.1:8080', terminate: files },
      { protocol: 'tls', hostname: 'plain.example.com', backend: '127.0.0.1:8080' },
    ]);
    expect([data[files.certFile], data[files.keyFile], data[files.challengeFile]]).toEqual([
      fresh.certPem,
      fresh.keyPem,
      'CH',
    ]);
    const us = status.endpoints?.find((e) => e.gateway === 'us');
    expect(us?.certificates).toEqual([expect.objectContaining({ names: ['a.example.com'], terminatedBy: 'Agent' })]);
    expect(us?.urls).toContain('https://a.example.com');
  });
});
