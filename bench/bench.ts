/**
 * `npm run bench`: WebGW against the direct path, OpenSSH `ssh -R` and the peer tunnels frp,
 * chisel, rathole and bore, in one run on this machine, on loopback. Scenarios: HTTP keep-alive
 * (wrk, 1/64/256 connections, 1 KiB and 1 MiB), a fixed-rate latency sweep (vegeta), bulk
 * throughput (iperf3, 1 and 8 streams, both directions, with the tunnel's CPU per GB), HTTPS
 * terminated at the edge (WebGW's gateway against nginx terminating TLS for the same backend:
 * keep-alive requests and new connections per second),
 * connection churn, head-of-line blocking (a latency probe while a bulk transfer shares the
 * tunnel) and memory (RSS idle and with 1,000 and 10,000 open streams). Every figure is the
 * median of --runs runs and is also given as a ratio to direct. Results: bench/results/
 * (latest.json, README.md, PNG charts). Not part of `npm test`: a full run takes about half an hour.
 *
 *   npm run bench -- [--duration 5] [--runs 3] [--systems webgw,frp] [--scenarios http,latency]
 *                    [--compare bench/results/previous/<date>.json]   (WebGW before/after table)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startHolder, startIperfServer, startNginx, type Holder } from './lib/backends.ts';
import { rssWithOpenStreams } from './lib/hold.ts';
import { iperf } from './lib/iperf.ts';
import { median, rssBytes } from './lib/proc.ts';
import { addRatios, markdown, writeCharts, type BenchRecord, type EarlierRun, type RunInfo } from './lib/report.ts';
import { allSystems, peersBin, repoRoot, type System } from './lib/systems.ts';
import { vegeta } from './lib/vegeta.ts';
import { wrk } from './lib/wrk.ts';
import { h2load } from './lib/h2load.ts';

const SCENARIOS = ['http', 'https', 'latency', 'throughput', 'churn', 'hol', 'memory'] as const;
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
    systems: { type: 'string', default: Object.keys(allSystems).join(',') },
    scenarios: { type: 'string', default: SCENARIOS.join(',') },
    out: { type: 'string', default: join(repoRoot, 'bench', 'results') },
    compare: { type: 'string' },
  },
});
const durationSec = Number(values.duration);
const runs = Number(values.runs);
const systems = values.systems.split(',').map((s) => s.trim());
const scenarios = new Set(values.scenarios.split(','));
for (const s of systems)
  if (!allSystems[s]) throw new Error(`unknown system ${s}; known: ${Object.keys(allSystems).join(', ')}`);
if (!systems.includes('direct')) systems.unshift('direct'); // ratios need it
const log = (msg: string): void => void process.stderr.write(`[bench] ${msg}\n`);

/** HTTP endpoints of a system: WebGW both through its HTTP listener and through a TCP route. */
function httpTargets(s: System): Array<{ system: string; port: number; host?: string }> {
  return s.http
    ? [
        { system: s.name, port: s.http.port, host: s.http.host },
        { system: `${s.name} (tcp route)`, port: s.ports[0]! },
      ]
    : [{ system: s.name, port: s.ports[0]! }];
}

/**
 * Median of `n` runs, and the spread: `<metric>Min` and `<metric>Max` of the runs. A run that
 * fails is logged and left out (all failed: NaN, and `failed`).
 */
async function medianOf<T extends object>(
  n: number,
  fn: () => Promise<T>,
  pick: Array<keyof T>,
): Promise<Record<string, number>> {
  const results: T[] = [];
  for (let i = 0; i < n; i++) {
    try {
      results.push(await fn());
    } catch (err) {
      log(`run failed: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (results.length === 0) return { ...Object.fromEntries(pick.map((k) => [k, NaN])), failed: n };
  return Object.fromEntries(
    pick.flatMap((k) => {
      const values = results.map((r) => Number(r[k]));
      return [
        [k, median(values)],
        [`${String(k)}Min`, Math.min(...values)],
        [`${String(k)}Max`, Math.max(...values)],
      ];
    }),
  );
}

async function measure(s: System, records: BenchRecord[]): Promise<void> {
  const add = (
    system: string,
    scenario: string,
    params: BenchRecord['params'],
    metrics: Record<string, number>,
  ): void => {
    records.push({ system, scenario, params, metrics, ratioToDirect: {} });
    log(`${system} ${scenario} ${JSON.stringify(params)} ${JSON.stringify(metrics)}`);
  };
  const iperfPort = s.ports[1]!;
  for (const t of httpTargets(s)) {
    const url = (path: string): string => `http://127.0.0.1:${t.port}${path}`;
    const host = t.host ? { host: t.host } : {};
    if (scenarios.has('http')) {
      await wrk({ url: url('/1k'), connections: 16, durationSec: 1, ...host }); // warm-up
      for (const size of ['1k', '1m']) {
        for (const connections of [1, 64, 256]) {
          const m = await medianOf(runs, () => wrk({ url: url(`/${size}`), connections, durationSec, ...host }), [
            'requestsPerSec',
            'p50Ms',
            'p99Ms',
            'errors',
          ]);
          add(t.system, 'http', { size, connections }, m);
        }
      }
    }
    if (scenarios.has('latency')) {
      for (const rate of [100, 1000, 3000]) {
        const m = await medianOf(runs, () => vegeta({ url: url('/1k'), rate, durationSec, ...host }), [
          'p50Ms',
          'p99Ms',
          'success',
        ]);
        add(t.system, 'latency', { rate }, m);
      }
    }
    if (scenarios.has('churn')) {
      const m = await medianOf(
        runs,
        () => wrk({ url: url('/1k'), connections: 64, durationSec, headers: ['Connection: close'], ...host }),
        ['requestsPerSec', 'p99Ms', 'errors'],
      );
      add(t.system, 'churn', { connections: 64 }, m);
    }
    if (scenarios.has('hol')) {
      const m = await medianOf(runs, async () => {
        const bulk = iperf({ port: iperfPort, streams: 1, reverse: true, durationSec: durationSec + 2, pids: s.pids });
        await new Promise((r) => setTimeout(r, 1000));
        const probe = await vegeta({ url: url('/1k'), rate: 100, durationSec, ...host });
        const bulkResult = await bulk;
        return { ...probe, bulkGbitPerSec: bulkResult.gbitPerSec };
      }, ['p50Ms', 'p99Ms', 'bulkGbitPerSec']);
      add(t.system, 'hol', {}, m);
    }
  }
  if (scenarios.has('https') && s.https) {
    // HTTPS terminated at the edge: keep-alive requests, and new connections (a TLS handshake and
    // one request each, Connection: close), the same for both.
    const url = `https://${s.https.host}:${s.https.port}/1k`;
    await wrk({ url, connections: 16, durationSec: 1 }); // warm-up
    for (const connections of [1, 64]) {
      add(
        s.name,
        'https',
        { mode: 'keep-alive', connections },
        await medianOf(runs, () => wrk({ url, connections, durationSec }), [
          'requestsPerSec',
          'p50Ms',
          'p99Ms',
          'errors',
        ]),
      );
    }
    add(
      s.name,
      'https',
      { mode: 'new connection', connections: 64 },
      await medianOf(runs, () => wrk({ url, connections: 64, durationSec, headers: ['Connection: close'] }), [
        'requestsPerSec',
        'p50Ms',
        'p99Ms',
        'errors',
      ]),
    );
    // HTTP/2 (ALPN h2) with 10 concurrent streams per connection; the backend gets HTTP/1.1.
    for (const connections of [1, 16]) {
      add(
        s.name,
        'h2',
        { connections, streams: 10 },
        await medianOf(runs, () => h2load({ url, connections, streams: 10, durationSec }), [
          'requestsPerSec',
          'meanMs',
          'errors',
        ]),
      );
    }
  }
  if (scenarios.has('throughput')) {
    for (const streams of [1, 8]) {
      for (const direction of ['upload', 'download']) {
        const m = await medianOf(
          runs,
          () => iperf({ port: iperfPort, streams, reverse: direction === 'download', durationSec, pids: s.pids }),
          ['gbitPerSec', 'cpuSecondsPerGB'],
        );
        add(s.name, 'throughput', { streams, direction }, m);
      }
    }
  }
}

/**
 * Memory on a freshly started system (after a heavier scenario the heap keeps what it grew to),
 * so it gets its own instance; some tunnels do not recover from reaching their file limit.
 */
async function measureMemory(s: System, holder: Holder, records: BenchRecord[]): Promise<void> {
  const add = (params: BenchRecord['params'], metrics: Record<string, number>): void => {
    records.push({ system: s.name, scenario: 'memory', params, metrics, ratioToDirect: {} });
    log(`${s.name} memory ${JSON.stringify(params)} ${JSON.stringify(metrics)}`);
  };
  const holdPort = s.ports[2]!;
  await new Promise((r) => setTimeout(r, 1000));
  const idle = rssBytes(s.pids);
  add({ streams: 0 }, { rssMiB: idle / 2 ** 20, perStreamKiB: NaN, opened: 0 });
  for (const n of [1000, 10_000]) {
    const { rss, opened, alive } = await rssWithOpenStreams({ port: holdPort, n, holder, pids: s.pids });
    // A tunnel that died under the load has no memory to report; `alive` says so.
    add(
      { streams: n },
      alive
        ? { rssMiB: rss / 2 ** 20, perStreamKiB: (rss - idle) / 1024 / Math.max(opened, 1), opened, alive: 1 }
        : { rssMiB: NaN, perStreamKiB: NaN, opened, alive: 0 },
    );
  }
}

function versions(): Record<string, string> {
  // nginx and ssh print their version on stderr.
  const first = (cmd: string, args: string[]): string => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]!.trim();
  };
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const goModVersion = (name: string, module: string): string =>
    new RegExp(`${module.replace(/[.]/g, '\\.')} (v\\S+)`).exec(
      readFileSync(join(repoRoot, 'bench', 'peers', name, 'go.mod'), 'utf8'),
    )?.[1] ?? '?';
  return {
    direct: first('nginx', ['-v']).replace('nginx version: ', ''),
    webgw: `${pkg.version} (Node ${process.version})`,
    'ssh -R': first('ssh', ['-V']),
    frp: goModVersion('frp', 'github.com/fatedier/frp'),
    chisel: goModVersion('chisel', 'github.com/jpillora/chisel'),
    rathole: first(join(peersBin, 'rathole'), ['--version']),
    bore: first(join(peersBin, 'bore'), ['--version']),
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'webgw-bench-'));
  const records: BenchRecord[] = [];
  const transports: Record<string, string> = {};
  const nginx = await startNginx(join(dir, 'nginx'));
  const iperfServer = await startIperfServer();
  const holder = await startHolder();
  try {
    const start = (name: string, round: string): Promise<System> => {
      log(`starting ${name}`);
      return allSystems[name]!(join(dir, `${name.replace(/\W/g, '')}-${round}`), [
        nginx.port,
        iperfServer.port,
        holder.port,
      ]);
    };
    for (const name of systems) {
      const s = await start(name, 'load');
      transports[name] = s.transport;
      try {
        await measure(s, records);
      } finally {
        await s.stop();
      }
      if (scenarios.has('memory') && name !== 'direct') {
        const fresh = await start(name, 'memory');
        try {
          await measureMemory(fresh, holder, records);
        } finally {
          await fresh.stop();
        }
      }
    }
  } finally {
    await holder.stop();
    await iperfServer.stop();
    await nginx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  addRatios(records);
  for (const r of records.filter((x) => x.scenario === 'latency')) {
    const d = records.find((x) => x.system === 'direct' && x.scenario === 'latency' && x.params.rate === r.params.rate);
    r.metrics.addedP99Ms = r.metrics.p99Ms! - (d?.metrics.p99Ms ?? NaN);
  }
  const info: RunInfo = {
    date: new Date().toISOString(),
    machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux`,
    versions: versions(),
    durationSec,
    runs,
    transports,
  };
  mkdirSync(values.out, { recursive: true });
  writeFileSync(
    join(values.out, 'latest.json'),
    `${JSON.stringify({ ...info, records }, (_k, v: unknown) => (typeof v === 'number' && Number.isNaN(v) ? null : v), 2)}\n`,
  );
  const charts = writeCharts(records, values.out);
  const earlier = values.compare ? (JSON.parse(readFileSync(values.compare, 'utf8')) as EarlierRun) : undefined;
  writeFileSync(
    join(values.out, 'README.md'),
    `${markdown(records, info, earlier)}\n${charts.map((c) => `![${c}](${c})`).join('\n')}\n`,
  );
  log(`results in ${values.out}: latest.json, README.md, ${charts.join(', ')}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exitCode = 1;
});
