/**
 * Partitions and packet loss (issue 17), with a real network between agent and gateways: the
 * agent runs as its own process in a network namespace (netns.ts, 198.18.0.0/15), the two
 * gateways and the backend on host addresses of the veth pair. iptables rules inside the
 * namespace cut the agent from one gateway (DROP: no RST, no FIN, a true partition) or drop a
 * share of its packets (the statistic match). Needs root; skipped otherwise.
 */
import { writeFileSync } from 'node:fs';
import { startGateway, waitFor, type GatewayFixture } from '../helpers/fixture.ts';
import { spawnWebgw, type WebgwProcess } from '../helpers/processes.ts';
import { HOST, KEEPALIVE, download, small, startPayloadBackend, type Outcome } from './link-fixture.ts';
import { createAgentNetns, netnsAvailable, type AgentNetns } from './netns.ts';
import { report } from './report.ts';

const MiB = 1024 * 1024;
const DETECT_MS = KEEPALIVE.intervalMs * (KEEPALIVE.missedPongs + 1);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const describeIf = netnsAvailable() ? describe : describe.skip;

const summary = (os: Outcome[]): string => {
  const counts = new Map<string, number>();
  for (const o of os) counts.set(o.seen, (counts.get(o.seen) ?? 0) + 1);
  const ms = os.map((o) => o.ms).sort((a, b) => a - b);
  return `${[...counts].map(([k, n]) => `${n}× ${k}`).join(', ')}; longest ${ms.at(-1) ?? 0} ms`;
};
const p99 = (os: Outcome[]): number => {
  const ms = os.map((o) => o.ms).sort((a, b) => a - b);
  return ms[Math.min(ms.length - 1, Math.ceil(0.99 * ms.length) - 1)] ?? 0;
};

describeIf('partitions and packet loss (network namespace, iptables)', () => {
  let ns: AgentNetns;
  let gateways: GatewayFixture[];
  let backend: Awaited<ReturnType<typeof startPayloadBackend>>;
  let agent: WebgwProcess;

  beforeAll(async () => {
    ns = createAgentNetns(7 + (process.pid % 100), 3);
    const [a, b, backendAddress] = ns.hostAddresses as [string, string, string];
    backend = await startPayloadBackend(backendAddress);
    gateways = [
      await startGateway({ tunnelAddress: a, keepalive: KEEPALIVE }),
      await startGateway({ tunnelAddress: b, keepalive: KEEPALIVE }),
    ];
    const creds = [
      await gateways[0]!.issueAgent('app', { http: [HOST] }),
      await gateways[1]!.issueAgent('app', { http: [HOST] }),
    ];
    const config = gateways[0]!.dir.file('agent.json');
    writeFileSync(
      config,
      JSON.stringify({
        name: 'partitioned',
        gateways: gateways.map((g, i) => ({ name: `gw${i}`, endpoints: [g.tunnelUrl], ...creds[i] })),
        routes: [{ protocol: 'http', hostname: HOST, backend: `${backendAddress}:${backend.port}` }],
        keepalive: KEEPALIVE,
        reconnect: { initialMs: 50, maxMs: 250 },
        limits: { connectTimeoutMs: 2000 },
      }),
    );
    agent = spawnWebgw(
      ['agent', '--config', config],
      { WEBGW_LOG_LEVEL: 'info' },
      {
        launch: ['ip', 'netns', 'exec', ns.name, process.execPath],
      },
    );
    await waitFor(() => gateways.every((g) => g.gateway.agentCount === 1), 20_000, 'the agent on both gateways');
  });
  afterAll(async () => {
    await agent?.stop();
    for (const g of gateways ?? []) {
      await g.stop();
      g.dir.remove();
    }
    backend?.server.close();
    ns?.remove();
    report.print('partitions and packet loss');
  });

  it('cut from one of two gateways: the other keeps serving, requests to the cut one fail fast, the session returns on heal', async () => {
    const [a, b] = gateways as [GatewayFixture, GatewayFixture];
    const cutAddress = ns.hostAddresses[1]!;
    const rules = [
      ['OUTPUT', '-d', cutAddress, '-j', 'DROP'],
      ['INPUT', '-s', cutAddress, '-j', 'DROP'],
    ];
    for (const r of rules) ns.iptables(['-I', ...r]);
    const cutAt = performance.now();
    const viaA: Outcome[] = [];
    const viaB: Outcome[] = [];
    // Both gateways asked every 50 ms for the cut, detection and some seconds more.
    while (performance.now() - cutAt < DETECT_MS + 3000) {
      const [oa, ob] = await Promise.all([small(a.httpPort, 10_000), small(b.httpPort, DETECT_MS + 5000)]);
      viaA.push(oa);
      viaB.push(ob);
      await sleep(50);
    }
    const droppedOnB = b.gateway.agentCount === 0;
    for (const r of rules) ns.iptables(['-D', ...r]);
    const healedAt = performance.now();
    await waitFor(() => b.gateway.agentCount === 1, 30_000, 'the session to the healed gateway');
    const backMs = Math.round(performance.now() - healedAt);
    const afterHeal = await small(b.httpPort);

    expect(viaA.filter((o) => !o.ok)).toEqual([]);
    expect(droppedOnB).toBe(true);
    for (const o of viaB) expect(o.ms).toBeLessThan(DETECT_MS + 1500);
    expect(afterHeal.seen).toBe('ok');
    report.add('agent cut from gateway B (iptables DROP both ways), then healed', {
      'through gateway A during the cut': summary(viaA),
      'through gateway B during the cut': summary(viaB),
      'B dropped the session (bound)': `yes (${DETECT_MS} ms)`,
      'session back on B after heal ms': backMs,
    });
  });

  for (const loss of [0.01, 0.05]) {
    it(`${loss * 100} % packet loss on the agent's link: transfers exact, throughput and p99 measured`, async () => {
      const a = gateways[0]!;
      const clean = await download(a.httpPort, 16 * MiB);
      const rule = ['INPUT', '-m', 'statistic', '--mode', 'random', '--probability', String(loss), '-j', 'DROP'];
      const out = ['OUTPUT', '-m', 'statistic', '--mode', 'random', '--probability', String(loss), '-j', 'DROP'];
      ns.iptables(['-I', ...rule]);
      ns.iptables(['-I', ...out]);
      try {
        const lossy = await download(a.httpPort, 16 * MiB, 120_000);
        const smalls: Outcome[] = [];
        for (let i = 0; i < 100; i++) smalls.push(await small(a.httpPort, 30_000));
        expect(clean.seen).toBe('ok');
        expect(lossy.seen).toBe('ok');
        expect(smalls.filter((o) => !o.ok)).toEqual([]);
        const mbit = (o: Outcome): string => ((16 * 8 * 1.048576) / (o.ms / 1000)).toFixed(0);
        report.add(`${loss * 100} % loss each way (iptables statistic)`, {
          '16 MiB download Mbit/s (lossy / clean)': `${mbit(lossy)} / ${mbit(clean)}`,
          'small requests p99 / max ms': `${p99(smalls)} / ${Math.max(...smalls.map((o) => o.ms))}`,
          exact: 'yes',
        });
      } finally {
        ns.iptables(['-D', ...rule]);
        ns.iptables(['-D', ...out]);
      }
    });
  }
});
