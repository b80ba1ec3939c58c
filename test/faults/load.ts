/**
 * A constant load for the operations tests: `rps` small requests a second, open loop (each on a
 * new connection, sent on schedule whether or not earlier ones answered, so a stall shows as
 * failures and latency instead of slowing the load down), and one bulk download after another.
 * Every request is counted by what its client saw.
 */
import { download, small, type Outcome } from './link-fixture.ts';

export interface LoadResult {
  requests: number;
  failed: number;
  /** What the failed ones saw, counted. */
  failures: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  bulks: number;
  bulkFailed: number;
  corrupt: number;
}

const pct = (sorted: number[], p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

export function startLoad(
  httpPort: () => number,
  opts: { rps: number; bulkBytes: number },
): { stop(): Promise<LoadResult> } {
  const outcomes: Outcome[] = [];
  const bulkOutcomes: Outcome[] = [];
  const inFlight = new Set<Promise<void>>();
  let running = true;
  const tickMs = 10;
  let owed = 0;
  const timer = setInterval(() => {
    owed += (opts.rps * tickMs) / 1000;
    for (; owed >= 1; owed -= 1) {
      const p = small(httpPort(), 10_000).then((o) => {
        outcomes.push(o);
        inFlight.delete(p);
      });
      inFlight.add(p);
    }
  }, tickMs);
  const bulk = (async () => {
    while (running) bulkOutcomes.push(await download(httpPort(), opts.bulkBytes, 60_000));
  })();
  return {
    async stop() {
      running = false;
      clearInterval(timer);
      await Promise.all([...inFlight]);
      await bulk;
      const failures: Record<string, number> = {};
      for (const o of [...outcomes, ...bulkOutcomes]) if (!o.ok) failures[o.seen] = (failures[o.seen] ?? 0) + 1;
      const ms = outcomes.map((o) => o.ms).sort((a, b) => a - b);
      return {
        requests: outcomes.length,
        failed: outcomes.filter((o) => !o.ok).length,
        failures,
        p50Ms: pct(ms, 50),
        p99Ms: pct(ms, 99),
        maxMs: ms.at(-1) ?? 0,
        bulks: bulkOutcomes.length,
        bulkFailed: bulkOutcomes.filter((o) => !o.ok).length,
        corrupt: [...outcomes, ...bulkOutcomes].filter((o) => o.corrupt).length,
      };
    },
  };
}

export const describeLoad = (r: LoadResult): string =>
  `${r.requests} requests, ${r.failed} failed; ${r.bulks} bulk transfers, ${r.bulkFailed} failed; ` +
  `p50/p99/max ${r.p50Ms}/${r.p99Ms}/${r.maxMs} ms` +
  (Object.keys(r.failures).length ? `; seen: ${JSON.stringify(r.failures)}` : '');
