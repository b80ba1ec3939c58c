/**
 * HTTP keep-alive benchmark: requests/s and p50/p99 latency with wrk, direct to nginx, through
 * WebGW and through `ssh -R`, in one run on this machine. Each figure is the median of `--runs`
 * runs, also given as a ratio to direct from the same run.
 *
 *   npm run bench:http -- [--connections 64] [--duration 10] [--runs 3] [--path /1k]
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, startNginx, startSshReverse, startWebgw, type Service } from './lib/services.ts';
import { wrk, type WrkResult } from './lib/wrk.ts';

const { values } = parseArgs({ options: {
  connections: { type: 'string', default: '64' }, duration: { type: 'string', default: '10' },
  runs: { type: 'string', default: '3' }, path: { type: 'string', default: '/1k' }, out: { type: 'string', default: 'http' },
} });
const connections = Number(values.connections);
const duration = Number(values.duration);
const runs = Number(values.runs);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function measure(service: Service): Promise<WrkResult & { runs: WrkResult[] }> {
  await wrk({ url: `http://127.0.0.1:${service.port}${values.path}`, connections, durationSec: 2, ...(service.host ? { host: service.host } : {}) }); // warm-up
  const all: WrkResult[] = [];
  for (let i = 0; i < runs; i++) {
    all.push(await wrk({ url: `http://127.0.0.1:${service.port}${values.path}`, connections, durationSec: duration, ...(service.host ? { host: service.host } : {}) }));
  }
  return {
    requestsPerSec: median(all.map((r) => r.requestsPerSec)), p50Ms: median(all.map((r) => r.p50Ms)),
    p99Ms: median(all.map((r) => r.p99Ms)), errors: all.reduce((n, r) => n + r.errors, 0), runs: all,
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'webgw-bench-'));
  const started: Service[] = [];
  try {
    const nginx = await startNginx(join(dir, 'nginx'));
    started.push(nginx);
    mkdirSync(join(dir, 'webgw'));
    mkdirSync(join(dir, 'ssh'));
    const systems: Service[] = [
      { ...nginx, name: 'direct' },
      await startWebgw(join(dir, 'webgw'), nginx.port),
      await startSshReverse(join(dir, 'ssh'), nginx.port),
    ];
    started.push(...systems.slice(1));
    const results: Record<string, Awaited<ReturnType<typeof measure>>> = {};
    for (const s of systems) {
      process.stderr.write(`measuring ${s.name} ...\n`);
      results[s.name] = await measure(s);
    }
    const direct = results.direct!;
    const rows = Object.entries(results).map(([name, r]) => ({
      system: name, requestsPerSec: r.requestsPerSec, p50Ms: r.p50Ms, p99Ms: r.p99Ms, errors: r.errors,
      rpsRatioToDirect: r.requestsPerSec / direct.requestsPerSec, p99AddedMs: r.p99Ms - direct.p99Ms,
      runs: r.runs,
    }));
    const ssh = results['ssh -R']!;
    const webgw = results.webgw!;
    const table = [
      `HTTP keep-alive, wrk -c${connections} -t2 -d${duration}s, ${values.path}, median of ${runs} — ${new Date().toISOString()}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`,
      '',
      '| system | requests/s | × direct | p50 ms | p99 ms | errors |',
      '|---|---:|---:|---:|---:|---:|',
      ...rows.map((r) => `| ${r.system} | ${r.requestsPerSec.toFixed(0)} | ${r.rpsRatioToDirect.toFixed(2)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.errors} |`),
      '',
      `WebGW / ssh -R requests/s: ${(webgw.requestsPerSec / ssh.requestsPerSec).toFixed(2)}`,
    ].join('\n');
    process.stdout.write(table + '\n');
    const outDir = join(repoRoot, 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, `${values.out}.md`), table + '\n');
    writeFileSync(join(outDir, `${values.out}.json`), JSON.stringify({ date: new Date().toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model }, node: process.version, connections, duration, path: values.path, runs, results: rows }, null, 2) + '\n');
  } finally {
    for (const s of started.reverse()) s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exitCode = 1;
});
