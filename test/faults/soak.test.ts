/**
 * The soak's 2-minute form (soak.ts; `npm run soak` runs 30 minutes): mixed load through a real
 * gateway and two agent processes, one agent restarted every 30 s. Nothing may fail; after
 * warm-up memory and descriptors stay within noise (the long form states the slope).
 */
import { report } from './report.ts';
import { runSoak } from './soak.ts';

describe('soak (short form)', () => {
  afterAll(() => report.print('soak, 2 minutes'));

  it('2 minutes of mixed load with agent restarts: no failure, no growth beyond noise', async () => {
    const r = await runSoak({ seconds: 120, sampleEveryS: 10, warmupS: 40, restartAgentEveryS: 30 });
    const after = r.samples.filter((s) => s.t >= 40);
    const first = after[0]!;
    const last = after.at(-1)!;
    const growth = (f: (s: (typeof r.samples)[number]) => number): number => Math.round((f(last) - f(first)) * 10) / 10;
    report.add('mixed load, 120 s, agent restarted every 30 s', {
      load: Object.entries(r.load)
        .map(([k, c]) => `${k} ${c.ok} ok / ${c.failed} failed`)
        .join(', '),
      'agent restarts': r.agentRestarts,
      'gateway RSS / heap / fds growth after warm-up': `${growth((s) => s.gateway.rssMiB)} MiB / ${growth((s) => s.gateway.heapMiB)} MiB / ${growth((s) => s.gateway.fds)}`,
      'agent RSS / heap / fds growth after warm-up': `${growth((s) => s.agent.rssMiB)} MiB / ${growth((s) => s.agent.heapMiB)} MiB / ${growth((s) => s.agent.fds)}`,
      'longest event-loop delay gateway / agent ms': `${Math.max(...r.samples.map((s) => s.gateway.loopDelayMaxMs)).toFixed(0)} / ${Math.max(...r.samples.map((s) => s.agent.loopDelayMaxMs)).toFixed(0)}`,
      unexpected: r.unexpected.length ? r.unexpected.join('; ') : 'none',
    });
    expect(r.unexpected).toEqual([]);
    expect(r.agentRestarts).toBeGreaterThanOrEqual(2);
    for (const [kind, c] of Object.entries(r.load)) {
      expect(c.ok).toBeGreaterThan(0);
      expect({ kind, failures: c.seen }).toEqual({ kind, failures: {} });
    }
    // Within noise over 80 s: a leak of a few KiB per request would show as tens of MiB of heap.
    // RSS is reported, not bounded: on a loaded CI machine its one-time step of warm-up (the
    // allocator taking its pools, ~100 MiB in the gateway) can fall after the warm-up window.
    expect(growth((s) => s.gateway.heapMiB)).toBeLessThan(24);
    expect(growth((s) => s.agent.heapMiB)).toBeLessThan(24);
    expect(Math.abs(growth((s) => s.gateway.fds))).toBeLessThan(30);
    expect(Math.abs(growth((s) => s.agent.fds))).toBeLessThan(30);
  }, 240_000);
});
