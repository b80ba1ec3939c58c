/**
 * Profiles WebGW under one load and prints where the gateway's and the agent's CPU time goes:
 * `npx node bench/profile-webgw.ts [iperf|iperf-r|http|http-1m|latency] [seconds] [cpu-prof|perf|none]`.
 *
 * - cpu-prof (default): `node --cpu-prof`, JavaScript functions by self time. It shows garbage
 *   collection only as "(garbage collector)" on the main thread.
 * - none: no profiler, for a quick before/after of the figures alone.
 * - perf: Linux `perf record` on both processes with all their threads (V8's marking and
 *   sweeping threads included), grouped by thread and by symbol. This is the view that showed
 *   concurrent marking at a third of all CPU. Needs `perf` (Debian: linux-perf).
 *
 * Output goes to bench/results/tmp/ (ignored by git). Run `npm run build` first.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, mkdirSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIperfServer, startNginx } from './lib/backends.ts';
import { iperf } from './lib/iperf.ts';
import { repoRoot, startWebgw } from './lib/systems.ts';
import { vegeta } from './lib/vegeta.ts';
import { wrk } from './lib/wrk.ts';

const [load = 'iperf', seconds = '6', profiler = 'cpu-prof'] = process.argv.slice(2);
if (profiler !== 'cpu-prof' && profiler !== 'perf' && profiler !== 'none')
  throw new Error(`profiler must be cpu-prof or perf, not ${profiler}`);
const profDir = join(repoRoot, 'bench', 'results', 'tmp');
rmSync(profDir, { recursive: true, force: true });
mkdirSync(profDir, { recursive: true });
const perfData = join(profDir, 'perf.data');
// --perf-basic-prof names JIT-compiled JavaScript in perf's output.
process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} ${{ perf: '--perf-basic-prof', 'cpu-prof': `--cpu-prof --cpu-prof-dir=${profDir}`, none: '' }[profiler]}`;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

function summary(file: string, top = 22): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    const cf = byId.get(id)!.callFrame;
    const key = `${cf.functionName || '(anonymous)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, t]) => `${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`)
    .join('\n');
}

const dir = mkdtempSync(join(tmpdir(), 'webgw-prof-'));
const nginx = await startNginx(join(dir, 'nginx'));
const iperfServer = await startIperfServer();
const webgw = await startWebgw(join(dir, 'webgw'), [nginx.port, iperfServer.port]);
delete process.env.NODE_OPTIONS;
const duration = Number(seconds);
const recorder =
  profiler === 'perf'
    ? spawn('perf', ['record', '-F', '999', '-g', '-o', perfData, '-p', webgw.pids.join(',')], { stdio: 'ignore' })
    : undefined;
if (recorder) await new Promise((r) => setTimeout(r, 500));
try {
  if (load === 'latency')
    console.log(
      await vegeta({
        url: `http://127.0.0.1:${webgw.http!.port}/1k`,
        host: webgw.http!.host,
        rate: 1000,
        durationSec: duration,
      }),
    );
  else if (load.startsWith('iperf'))
    console.log(
      await iperf({
        port: webgw.ports[1]!,
        streams: 1,
        reverse: load === 'iperf-r',
        durationSec: duration,
        pids: webgw.pids,
      }),
    );
  else
    console.log(
      await wrk({
        url: `http://127.0.0.1:${webgw.http!.port}/${load === 'http-1m' ? '1m' : '1k'}`,
        host: webgw.http!.host,
        connections: 64,
        durationSec: duration,
      }),
    );
} finally {
  // A failed load must not leave the gateway, agent and backends running.
  if (recorder) {
    recorder.kill('SIGINT');
    await new Promise((r) => recorder.once('exit', r));
  }
  await webgw.stop();
  await iperfServer.stop();
  await nginx.stop();
}
rmSync(dir, { recursive: true, force: true });
for (const f of readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')))
  console.log(`\n== ${f}\n${summary(join(profDir, f))}`);
if (profiler === 'perf') {
  console.log(`gateway pid ${webgw.pids[0]}, agent pid ${webgw.pids[1]}`);
  for (const sort of ['pid,comm,dso', 'comm,sym']) {
    const report = spawnSync('perf', ['report', '-i', perfData, '--no-children', '--sort', sort, '-g', 'none'], {
      encoding: 'utf8',
    });
    console.log(
      `\n== perf by ${sort}\n${report.stdout
        .split('\n')
        .filter((l) => l.trim() && !l.startsWith('#'))
        .slice(0, 25)
        .join('\n')}`,
    );
  }
}
