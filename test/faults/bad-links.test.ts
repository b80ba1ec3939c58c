/**
 * Bad links between agent and gateway (issue 17): Toxiproxy between them degrades the tunnel's
 * TCP connection. For each fault: what clients see, how long until traffic flows again once it
 * heals, and that every transfer that completes is bit-exact (SHA-256 at the far end) — a
 * damaged transfer fails visibly, it never delivers wrong bytes.
 */
import { Toxiproxy } from './toxiproxy.ts';
import { KEEPALIVE, download, small, startLink, upload, type Link, type Outcome } from './link-fixture.ts';
import { report } from './report.ts';

const MiB = 1024 * 1024;
/** Dead-peer detection bound: missed pongs, one more interval to notice, and a margin for CI. */
const DETECT_MS = KEEPALIVE.intervalMs * (KEEPALIVE.missedPongs + 1) + 1000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const seen = (os: Outcome[]): string => {
  const counts = new Map<string, number>();
  for (const o of os) counts.set(o.seen, (counts.get(o.seen) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n}× ${k}`).join(', ');
};

describe('bad links between agent and gateway', () => {
  let toxiproxy: Toxiproxy;
  let link: Link;
  let port: number;

  beforeAll(async () => {
    toxiproxy = await Toxiproxy.start();
  });
  afterAll(async () => {
    await toxiproxy?.stop();
    report.print('bad links');
  });
  beforeEach(async () => {
    link = await startLink(expect.getState().currentTestName!.replace(/\W+/g, '-'), toxiproxy);
    port = link.gw.httpPort;
  });
  afterEach(async () => {
    await link.close();
  });

  it('200 ms latency with 50 ms jitter each way: transfers exact, latency added once per direction', async () => {
    const direct = await small(port);
    await link.proxy.addBoth({ type: 'latency', attributes: { latency: 200, jitter: 50 } });
    const rtts: number[] = [];
    for (let i = 0; i < 5; i++) {
      const o = await small(port);
      expect(o.seen).toBe('ok');
      rtts.push(o.ms);
    }
    const down = await download(port, 4 * MiB);
    const up = await upload(port, 4 * MiB);
    expect(down.seen).toBe('ok');
    expect(up.seen).toBe('ok');
    rtts.sort((a, b) => a - b);
    // Client → gateway → (200 ± 50) agent → backend → (200 ± 50) gateway: one round trip of the link.
    expect(rtts[2]!).toBeGreaterThanOrEqual(300);
    expect(rtts[2]!).toBeLessThan(1500);
    report.add('latency 200±50 ms each way', {
      'request ms (min/median/max)': `${rtts[0]}/${rtts[2]}/${rtts[4]} (direct ${direct.ms})`,
      '4 MiB down / up ms': `${down.ms} / ${up.ms}`,
      exact: 'yes',
    });
  });

  it('1 Mbit/s each way: transfers exact at the link rate, small requests still answered', async () => {
    await link.proxy.addBoth({ type: 'bandwidth', attributes: { rate: 125 } }); // KB/s
    const size = 256 * 1024;
    const bulk = download(port, size, 60_000);
    await sleep(300);
    const during = await small(port, 30_000);
    const down = await bulk;
    const up = await upload(port, size, 60_000);
    expect(down.seen).toBe('ok');
    expect(up.seen).toBe('ok');
    expect(during.seen).toBe('ok');
    // 256 KiB at 125 KB/s is 2.1 s: the link, not the tunnel, sets the pace.
    expect(down.ms).toBeGreaterThan(1800);
    report.add('bandwidth 1 Mbit/s each way', {
      '256 KiB down / up ms': `${down.ms} / ${up.ms} (${((size * 8) / 1e6 / (down.ms / 1000)).toFixed(2)} Mbit/s down)`,
      'small request during the bulk ms': during.ms,
      exact: 'yes',
    });
  });

  it('black hole (no RST, no FIN): requests fail fast, the session is dropped within the ping bound, traffic returns on heal', async () => {
    const bulk = download(port, 64 * MiB, 60_000);
    await sleep(100);
    const cutAt = performance.now();
    const holes = await link.proxy.addBoth({ type: 'timeout', attributes: { timeout: 0 } });
    // Requests started during the cut: each completes or fails with a status, none hangs.
    const during: Outcome[] = [];
    while (performance.now() - cutAt < DETECT_MS + 1000) {
      during.push(await small(port, DETECT_MS + 5000));
      await sleep(100);
    }
    const dropped = link.gw.gateway.agentCount === 0;
    const bulkOutcome = await bulk;
    await link.proxy.remove(...holes);
    const recoveryMs = await link.untilServing();
    expect(dropped).toBe(true);
    expect(bulkOutcome.ok).toBe(false);
    expect(bulkOutcome.corrupt).toBe(false);
    expect(bulkOutcome.ms).toBeLessThan(DETECT_MS + 2000);
    for (const o of during) {
      expect(o.corrupt).toBe(false);
      expect(o.ms).toBeLessThan(DETECT_MS + 1000);
    }
    const after = await download(port, 4 * MiB);
    expect(after.seen).toBe('ok');
    report.add('black hole (timeout toxic), then heal', {
      'bulk transfer in flight': `${bulkOutcome.seen} after ${bulkOutcome.ms} ms`,
      'requests during the cut': `${seen(during)}; longest ${Math.max(...during.map((o) => o.ms))} ms`,
      'serving again after heal ms': recoveryMs,
      'bound (ping × missed + 1)': `${DETECT_MS - 1000} ms`,
    });
  });

  it('connection reset mid-transfer: the client sees a failure, never wrong bytes; the agent redials', async () => {
    const bulk = download(port, 64 * MiB, 60_000);
    await sleep(200);
    const resetAt = performance.now();
    const resets = await link.proxy.addBoth({ type: 'reset_peer', attributes: { timeout: 0 } });
    const bulkOutcome = await bulk;
    const failedAfter = Math.round(performance.now() - resetAt);
    await link.proxy.remove(...resets);
    const recoveryMs = await link.untilServing();
    expect(bulkOutcome.ok).toBe(false);
    expect(bulkOutcome.corrupt).toBe(false);
    const after = await upload(port, 4 * MiB);
    expect(after.seen).toBe('ok');
    report.add('reset_peer mid-transfer, then heal', {
      'bulk transfer in flight': `${bulkOutcome.seen}, ${failedAfter} ms after the reset`,
      'serving again after heal ms': recoveryMs,
      exact: 'yes (the failed one failed visibly)',
    });
  });

  it('tiny TCP segments (1–7 bytes): every transfer exact', async () => {
    await link.proxy.addBoth({ type: 'slicer', attributes: { average_size: 4, size_variation: 3, delay: 0 } });
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 5; i++) outcomes.push(await small(port));
    const down = await download(port, 512 * 1024, 60_000);
    const up = await upload(port, 512 * 1024, 60_000);
    for (const o of [...outcomes, down, up]) expect(o.seen).toBe('ok');
    report.add('slicer 1–7 byte segments each way', {
      'small requests': seen(outcomes),
      '512 KiB down / up ms': `${down.ms} / ${up.ms}`,
      exact: 'yes',
    });
  });

  it('the connection cut after 256 KiB: the transfer fails visibly, the next one on the new session is exact', async () => {
    const cut = await link.proxy.add({ type: 'limit_data', stream: 'downstream', attributes: { bytes: 256 * 1024 } });
    const cutTransfer = await upload(port, 4 * MiB, 30_000);
    await link.proxy.remove(cut);
    const recoveryMs = await link.untilServing();
    expect(cutTransfer.ok).toBe(false);
    expect(cutTransfer.corrupt).toBe(false);
    const after = await upload(port, 4 * MiB);
    expect(after.seen).toBe('ok');
    report.add('cut after 256 KiB (limit_data)', {
      'transfer across the cut': `${cutTransfer.seen} after ${cutTransfer.ms} ms`,
      'serving again ms': recoveryMs,
      exact: 'yes (the failed one failed visibly)',
    });
  });
});
