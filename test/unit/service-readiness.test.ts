/**
 * Ready means reachable: an ExposedService is Ready only when every gateway it is programmed on
 * has its agents' sessions on each replica the controller can read. Tables over the pure parts.
 */
import { planClaims } from '../../src/controller/exposedservice/claims.ts';
import { desiredExposedService, readiness, type AgentCredential } from '../../src/controller/exposedservice/desired.ts';
import type { ReplicaSessions } from '../../src/controller/sessions/observations.ts';
import type { ExposedService, Gateway } from '../../src/crds/types.ts';

const now = new Date('2026-11-30T12:00:00Z');
const cred: AgentCredential = { certPem: 'CERT', keyPem: 'KEY', caPem: 'CA' };
const up = (name: string, sessions: number): ReplicaSessions => ({
  name,
  sessions,
  reachable: true,
  ...(sessions > 0 ? { since: '2026-11-30T11:00:00.000Z', rttMilliseconds: 1 } : {}),
});
const down = (name: string): ReplicaSessions => ({ name, sessions: 0, reachable: false });

describe('readiness()', () => {
  const table: Array<
    [string, Array<[string, ReplicaSessions[] | undefined]>, number | undefined, string, string, RegExp]
  > = [
    [
      'every replica has agents',
      [['eu', [up('eu-a', 3), up('eu-b', 3)]]],
      3,
      'True',
      'AgentsConnected',
      /^connected to eu \(3 of 3 pods' agents\)$/,
    ],
    [
      'no agent anywhere',
      [['eu', [up('eu-a', 0)]]],
      3,
      'False',
      'NoAgentConnected',
      /^0 of 3 pods' agents connected to eu$/,
    ],
    [
      'no pod with the agent',
      [['eu', [up('eu-a', 0)]]],
      0,
      'False',
      'NoAgentConnected',
      /^no selected pod runs the agent, so none is connected to eu$/,
    ],
    [
      'no agent, pod count unknown',
      [['eu', [up('eu-a', 0)]]],
      undefined,
      'False',
      'NoAgentConnected',
      /^0 pods' agents connected to eu$/,
    ],
    [
      'one replica without agents',
      [['eu', [up('eu-a', 2), up('eu-b', 0)]]],
      2,
      'False',
      'NoAgentConnected',
      /^eu replica\(s\) eu-b have none of this service's agents \(others have 2 of 2\)$/,
    ],
    [
      'a replica unreachable, the other serves',
      [['eu', [up('eu-a', 2), down('eu-b')]]],
      2,
      'True',
      'AgentsConnected',
      /eu \(2 of 2 pods' agents; replica eu-b unreachable\)/,
    ],
    [
      'every replica unreachable',
      [['eu', [down('eu-a')]]],
      2,
      'False',
      'NoAgentConnected',
      /^eu: replica eu-a unreachable$/,
    ],
    ['no replica runs', [['eu', []]], 2, 'False', 'NoAgentConnected', /^eu: no proxy replica runs$/],
    [
      'one of two gateways without agents',
      [
        ['eu', [up('eu-a', 1)]],
        ['us', [up('us-a', 0)]],
      ],
      1,
      'False',
      'NoAgentConnected',
      /^0 of 1 pods' agents connected to us$/,
    ],
    [
      'a gateway not read yet',
      [
        ['eu', [up('eu-a', 1)]],
        ['us', undefined],
      ],
      1,
      'Unknown',
      'AgentsNotObserved',
      /us were not read yet/,
    ],
    [
      'not read yet and another failing',
      [
        ['eu', [up('eu-a', 0)]],
        ['us', undefined],
      ],
      1,
      'False',
      'NoAgentConnected',
      /connected to eu; us not read yet$/,
    ],
  ];
  it.each(table)('%s', (_name, gateways, pods, status, reason, message) => {
    const sessions = new Map(gateways.filter((g): g is [string, ReplicaSessions[]] => g[1] !== undefined));
    const got = readiness(
      gateways.map(([g]) => g),
      sessions,
      pods,
    );
    expect(got).toMatchObject({ status, reason });
    expect(got.message).toMatch(message);
  });
});

describe('ExposedService status with sessions', () => {
  const gateway = (name: string): Gateway => ({
    apiVersion: 'webgw.io/v1alpha1',
    kind: 'Gateway',
    metadata: { name },
    spec: {
      placement: {},
      listeners: { http: { port: 80 }, tunnel: { port: 8443 } },
      hostnamePolicy: { external: 'Allowed' },
    },
    status: { tunnelEndpoints: ['wss://198.18.0.1:8443'], addresses: [{ type: 'IPAddress', value: '198.18.0.1' }] },
  });
  const service = (status?: ExposedService['status']): ExposedService => ({
    apiVersion: 'webgw.io/v1alpha1',
    kind: 'ExposedService',
    metadata: { name: 'web', namespace: 'tenant', uid: 'u1', generation: 1, creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: {
      gateways: [{ name: 'eu' }, { name: 'us' }],
      mode: 'Sidecar',
      selector: { app: 'web' },
      backend: { port: 80 },
      proxyProtocol: 'None',
      routes: [{ protocol: 'HTTP', hostnames: ['web.example.com'] }],
    },
    ...(status ? { status } : {}),
  });
  const render = (svc: ExposedService, sessions: Map<string, ReplicaSessions[]>) => {
    const gateways = [gateway('eu'), gateway('us')];
    const plan = planClaims(gateways, [svc], [{ name: 'tenant', labels: {} }]).get('tenant/web')!;
    return desiredExposedService({
      service: svc,
      plan,
      gateways: new Map(gateways.map((g) => [g.metadata.name, g])),
      credentials: new Map([
        ['eu', cred],
        ['us', cred],
      ]),
      agentPods: 2,
      sessions,
      now,
    }).status;
  };

  it('shows sessions per gateway and replica, and how many gateways are connected', () => {
    const status = render(
      service(),
      new Map([
        ['eu', [up('eu-a', 2)]],
        ['us', [up('us-a', 0)]],
      ]),
    );
    expect(status.endpoints!.map((e) => [e.gateway, e.sessions, e.replicas])).toEqual([
      ['eu', 2, [up('eu-a', 2)]],
      ['us', 0, [up('us-a', 0)]],
    ]);
    expect(status.connectedGateways).toBe('1/2');
    expect(status.conditions!.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'NoAgentConnected',
      message: "0 of 2 pods' agents connected to us",
    });
    expect(status.conditions!.find((c) => c.type === 'Programmed')).toMatchObject({ status: 'True' });
  });

  it('keeps what the last status showed for a gateway not read since (a new leader writes nothing new)', () => {
    const first = render(
      service(),
      new Map([
        ['eu', [up('eu-a', 2)]],
        ['us', [up('us-a', 2)]],
      ]),
    );
    expect(first.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });
    const again = render(service(first), new Map());
    expect(again).toEqual(first);
  });
});
