/**
 * The Gateway reconciler against the real control plane, run in-process by the Manager that
 * `webgw controller` runs.
 */
import { createLogger } from '../../src/common/log.ts';
import { Manager } from '../../src/controller/manager.ts';
import { loadKubeConfig } from '../../src/controller/runtime/kube.ts';
import { eventually, fakeNode, installCrdsAndNamespace as installCrds, kubectl, kubectlOk, plane } from './helpers.ts';

const NS = 'webgw-system';
const log = createLogger({ test: 'gateway-controller' }, { level: process.env.WEBGW_TEST_LOG ? 'debug' : 'error' });

const node = (name: string, farmer: boolean, externalIp: string): string =>
  fakeNode({
    name,
    externalIp,
    ...(farmer
      ? {
          labels: { 'webgw.io/network-farmer': 'true' },
          taints: [{ key: 'webgw.io/network-farmer', value: 'true', effect: 'NoSchedule' }],
        }
      : {}),
  });

const gatewayYaml = (name: string, extra = ''): string => `
apiVersion: webgw.io/v1alpha1
kind: Gateway
metadata: {name: ${name}}
spec:
  placement:
    nodeSelector: {webgw.io/network-farmer: "true"}
    tolerations: [{key: webgw.io/network-farmer, operator: Exists, effect: NoSchedule}]
${extra}
  listeners: {http: {port: 80}, tunnel: {port: 8443}}
`;

interface GatewayObj {
  status?: {
    conditions?: Array<{ type: string; status: string; reason: string }>;
    addresses?: Array<{ value: string }>;
    tunnelEndpoints?: string[];
    replicas?: { desired: number; ready: number };
    observedGeneration?: number;
  };
  metadata: { generation: number };
}
async function getGateway(name: string): Promise<GatewayObj> {
  return JSON.parse(await kubectlOk(['get', 'wgw', name, '-o', 'json'])) as GatewayObj;
}
const condition = (gw: GatewayObj, type: string): string | undefined =>
  gw.status?.conditions?.find((c) => c.type === type)?.status;

function startManager(extra: Partial<ConstructorParameters<typeof Manager>[0]> = {}): Manager {
  return new Manager({
    kc: loadKubeConfig(plane().kubeconfig),
    namespace: NS,
    image: 'webgw:test',
    leaderElection: false,
    logger: log,
    ...extra,
  });
}

// Every describe below may run alone (jest -t), so each installs what it needs.
const installCrdsAndNamespace = (): Promise<void> => installCrds(NS);

describe('Gateway controller', () => {
  let manager: Manager;

  beforeAll(async () => {
    await installCrdsAndNamespace();
    await kubectlOk(
      ['apply', '-f', '-'],
      [
        node('gw-farmer-a', true, '127.0.10.1'),
        node('gw-farmer-b', true, '127.0.10.2'),
        node('gw-compute', false, '127.0.10.9'),
      ].join('---'),
    );
    await kubectlOk([
      'wait',
      '--for=condition=Ready',
      'node/gw-farmer-a',
      'node/gw-farmer-b',
      'node/gw-compute',
      '--timeout=60s',
    ]);
    manager = startManager();
    await manager.start();
  });

  afterAll(async () => {
    await manager.close();
  });

  it('puts proxy pods on the farmer nodes only and reports their addresses', async () => {
    await kubectlOk(['apply', '-f', '-'], gatewayYaml('edge'));
    const gw = await eventually(
      async () => {
        const g = await getGateway('edge');
        return condition(g, 'Ready') === 'True' && (g.status?.addresses?.length ?? 0) >= 2 ? g : undefined;
      },
      90_000,
      'Gateway edge Ready',
    );
    expect(gw.status?.addresses?.map((a) => a.value).sort()).toEqual(['127.0.10.1', '127.0.10.2']);
    expect(gw.status?.tunnelEndpoints?.sort()).toEqual(['wss://127.0.10.1:8443', 'wss://127.0.10.2:8443']);
    expect(gw.status?.replicas).toEqual({ desired: 2, ready: 2 });
    expect(condition(gw, 'Accepted')).toBe('True');
    expect(condition(gw, 'Programmed')).toBe('True');
    const pods = JSON.parse(
      await kubectlOk(['get', 'pods', '-n', NS, '-l', 'webgw.io/gateway=edge', '-o', 'json']),
    ) as { items: Array<{ spec: { nodeName: string; automountServiceAccountToken: boolean; hostNetwork: boolean } }> };
    expect(pods.items.map((p) => p.spec.nodeName).sort()).toEqual(['gw-farmer-a', 'gw-farmer-b']);
    expect(pods.items.every((p) => p.spec.automountServiceAccountToken === false && p.spec.hostNetwork)).toBe(true);
    // The CA key stays in the CA Secret; the edge Secret has only the CA certificate.
    const tunnel = JSON.parse(await kubectlOk(['get', 'secret', '-n', NS, 'webgw-gw-edge-tunnel', '-o', 'json'])) as {
      data: Record<string, string>;
    };
    expect(Object.keys(tunnel.data).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
    // What happened is in Events (cluster-scoped objects: the default namespace).
    const events = await kubectlOk([
      'get',
      'events',
      '-n',
      'default',
      '--field-selector',
      'involvedObject.kind=Gateway,involvedObject.name=edge',
      '-o',
      'jsonpath={.items[*].reason}',
    ]);
    expect(events.split(' ')).toEqual(expect.arrayContaining(['CreatedCA', 'PodsReady']));
  });

  it('makes zero writes while nothing changes', async () => {
    // Settled: both replicas read by the session probe (nothing listens there: unreachable).
    const read = await eventually(
      async () => {
        const g = await getGateway('edge');
        return (g.status as { proxies?: Array<{ reachable: boolean; message?: string }> } | undefined)?.proxies
          ?.length === 2
          ? g
          : undefined;
      },
      30_000,
      'both replicas read',
    );
    expect((read.status as { proxies: Array<{ reachable: boolean; message?: string }> }).proxies).toEqual([
      expect.objectContaining({ reachable: false, message: 'unreachable (ECONNREFUSED)' }),
      expect.objectContaining({ reachable: false, message: 'unreachable (ECONNREFUSED)' }),
    ]);
    const before = { ...manager.client.writes };
    const versions = await kubectlOk([
      'get',
      'wgw/edge',
      'ds/webgw-gw-edge',
      'cm/webgw-gw-edge-config',
      'secret/webgw-gw-edge-tunnel',
      'secret/webgw-gw-edge-ca',
      '-n',
      NS,
      '-o',
      'jsonpath={.items[*].metadata.resourceVersion}',
    ]);
    await new Promise((r) => setTimeout(r, 30_000));
    expect(manager.client.writes).toEqual(before);
    expect(
      await kubectlOk([
        'get',
        'wgw/edge',
        'ds/webgw-gw-edge',
        'cm/webgw-gw-edge-config',
        'secret/webgw-gw-edge-tunnel',
        'secret/webgw-gw-edge-ca',
        '-n',
        NS,
        '-o',
        'jsonpath={.items[*].metadata.resourceVersion}',
      ]),
    ).toBe(versions);
  });

  it('switches to a Deployment when replicas is set, and rolls the pods when a listener changes', async () => {
    await kubectlOk(['apply', '-f', '-'], gatewayYaml('edge', '    replicas: 1'));
    await eventually(
      async () => {
        const g = await getGateway('edge');
        return (
          g.status?.replicas?.desired === 1 &&
          g.status.replicas.ready === 1 &&
          g.status.observedGeneration === g.metadata.generation
        );
      },
      90_000,
      'one replica',
    );
    expect((await kubectl(['get', 'ds', 'webgw-gw-edge', '-n', NS])).code).not.toBe(0);
    const hashOf = async (): Promise<string> =>
      (
        await kubectlOk([
          'get',
          'deploy',
          'webgw-gw-edge',
          '-n',
          NS,
          '-o',
          'jsonpath={.spec.template.metadata.annotations.webgw\\.io/config-hash}',
        ])
      ).trim();
    const before = await hashOf();
    await kubectlOk(['patch', 'wgw', 'edge', '--type=merge', '-p', '{"spec":{"listeners":{"http":{"port":8080}}}}']);
    await eventually(async () => (await hashOf()) !== before, 60_000, 'a new pod template');
    const cm = await kubectlOk([
      'get',
      'cm',
      'webgw-gw-edge-config',
      '-n',
      NS,
      '-o',
      'jsonpath={.data.gateway\\.yaml}',
    ]);
    expect(cm).toMatch(/port: 8080/);
  });

  it('does not accept a Gateway only the controller can tell is invalid, and keeps running', async () => {
    const name = 'x'.repeat(53);
    await kubectlOk(['apply', '-f', '-'], gatewayYaml(name));
    const gw = await eventually(
      async () => {
        const g = await getGateway(name);
        return condition(g, 'Accepted') === 'False' ? g : undefined;
      },
      60_000,
      'Accepted=False',
    );
    expect(gw.status?.conditions?.find((c) => c.type === 'Accepted')?.reason).toBe('Invalid');
    await kubectlOk(['delete', 'wgw', name]);
    expect(condition(await getGateway('edge'), 'Accepted')).toBe('True');
  });

  it('recovers its watches after an API server restart', async () => {
    await plane().restartApiserver(2000);
    await kubectlOk(['patch', 'wgw', 'edge', '--type=merge', '-p', '{"spec":{"listeners":{"http":{"port":8081}}}}']);
    await eventually(
      async () =>
        /port: 8081/.test(
          await kubectlOk(['get', 'cm', 'webgw-gw-edge-config', '-n', NS, '-o', 'jsonpath={.data.gateway\\.yaml}']),
        ),
      90_000,
      'the change after the restart',
    );
  });

  it('removes everything a deleted Gateway owned, with no finalizer in the way', async () => {
    expect((await kubectlOk(['get', 'wgw', 'edge', '-o', 'jsonpath={.metadata.finalizers}'])).trim()).toBe('');
    await kubectlOk(['delete', 'wgw', 'edge', '--wait=true', '--timeout=60s']);
    await eventually(
      async () =>
        (
          await kubectlOk(['get', 'deploy,ds,cm,secret', '-n', NS, '-l', 'webgw.io/gateway=edge', '-o', 'name'])
        ).trim() === '',
      90_000,
      'owned objects to go',
    );
  });
});

describe('leader election', () => {
  beforeAll(installCrdsAndNamespace);

  it('only the leader reconciles; a standby takes over within the lease duration', async () => {
    const leaseDurationMs = 3000;
    const a = startManager({ leaderElection: true, identity: 'a', leaseDurationMs });
    const b = startManager({ leaderElection: true, identity: 'b', leaseDurationMs });
    await a.start();
    await eventually(async () => a.isLeader, 20_000, 'a to lead');
    await b.start();
    await kubectlOk(['apply', '-f', '-'], gatewayYaml('led'));
    await eventually(async () => condition(await getGateway('led'), 'Accepted') === 'True', 60_000, 'led reconciled');
    expect(b.isLeader).toBe(false);
    expect(b.client.writes.apply + b.client.writes.status + b.client.writes.create).toBe(0);
    // The leader stops (it releases its lease on the way out); the standby takes over.
    const killedAt = Date.now();
    await a.close();
    await eventually(async () => b.isLeader, 20_000, 'b to lead');
    expect(Date.now() - killedAt).toBeLessThan(leaseDurationMs + 2000);
    await kubectlOk(['patch', 'wgw', 'led', '--type=merge', '-p', '{"spec":{"listeners":{"http":{"port":8082}}}}']);
    await eventually(
      async () =>
        /port: 8082/.test(
          await kubectlOk(['get', 'cm', 'webgw-gw-led-config', '-n', NS, '-o', 'jsonpath={.data.gateway\\.yaml}']),
        ),
      60_000,
      'b to reconcile',
    );
    await b.close();
    await kubectlOk(['delete', 'wgw', 'led']);
  });
});

describe('two controller processes', () => {
  beforeAll(installCrdsAndNamespace);

  it('one leads; kill it and the other takes over within the lease duration', async () => {
    const { spawnWebgw } = await import('../helpers/processes.ts');
    const { freeWildcardPort } = await import('../helpers/ports.ts');
    const leaseDurationMs = 4000;
    const ports = [await freeWildcardPort(), await freeWildcardPort()];
    const procs = ports.map((port) =>
      spawnWebgw([
        'controller',
        '--kubeconfig',
        plane().kubeconfig,
        '--namespace',
        NS,
        '--image',
        'webgw:test',
        '--leader-elect',
        '--lease-duration',
        `${leaseDurationMs}ms`,
        '--admin',
        `127.0.0.1:${port}`,
      ]),
    );
    const leaderMetric = async (port: number): Promise<number | undefined> => {
      const text = await fetch(`http://127.0.0.1:${port}/metrics`).then(
        (r) => r.text(),
        () => undefined,
      );
      const m = text && /^webgw_controller_leader (\d)/m.exec(text);
      return m ? Number(m[1]) : undefined;
    };
    try {
      const leaders = await eventually(
        async () => {
          const states = await Promise.all(ports.map(leaderMetric));
          return states.every((s) => s !== undefined) && states.filter((s) => s === 1).length === 1
            ? states
            : undefined;
        },
        30_000,
        'exactly one leader',
      );
      const leaderIndex = leaders.indexOf(1);
      const standby = 1 - leaderIndex;
      await kubectlOk(['apply', '-f', '-'], gatewayYaml('procs'));
      await eventually(
        async () => condition(await getGateway('procs'), 'Accepted') === 'True',
        60_000,
        'procs reconciled',
      );
      // A crash: no chance to release the lease; the standby must wait it out.
      const killedAt = Date.now();
      procs[leaderIndex]!.proc.kill('SIGKILL');
      await eventually(async () => (await leaderMetric(ports[standby]!)) === 1, 30_000, 'the standby to lead');
      const takeover = Date.now() - killedAt;
      expect(takeover).toBeLessThan(leaseDurationMs + 2000);
      process.stdout.write(`leader failover after a crash took ${takeover} ms (lease ${leaseDurationMs} ms)\n`);
      await kubectlOk(['patch', 'wgw', 'procs', '--type=merge', '-p', '{"spec":{"listeners":{"http":{"port":8083}}}}']);
      await eventually(
        async () =>
          /port: 8083/.test(
            await kubectlOk(['get', 'cm', 'webgw-gw-procs-config', '-n', NS, '-o', 'jsonpath={.data.gateway\\.yaml}']),
          ),
        60_000,
        'the new leader to reconcile',
      );
    } finally {
      await Promise.all(procs.map((p) => p.stop()));
      await kubectl(['delete', 'wgw', 'procs']);
    }
  });
});
