/**
 * Profiles WebGW under one load (`node --cpu-prof` on the gateway and the agent) and prints where
 * their CPU time goes: `node bench/profile-webgw.ts [iperf|iperf-r|http|http-1m] [seconds]`.
 * Profiles are written to bench/results/tmp/ (ignored by git). Run `npm run build` first.
 */
import { readFileSync, readdirSync, mkdirSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIperfServer, startNginx } from './lib/backends.ts';
import { iperf } from './lib/iperf.ts';
import { repoRoot, startWebgw } from './lib/systems.ts';
import { wrk } from './lib/wrk.ts';

const [load = 'iperf', seconds = '6'] = process.argv.slice(2);
const profDir = join(repoRoot, 'bench', 'results', 'tmp');
rmSync(profDir, { recursive: true, force: true });
mkdirSync(profDir, { recursive: true });
process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${profDir}`;

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }

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
  return [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, t]) => `${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`).join('\n');
}

const dir = mkdtempSync(join(tmpdir(), 'webgw-prof-'));
const nginx = await startNginx(join(dir, 'nginx'));
const iperfServer = await startIperfServer();
const webgw = await startWebgw(join(dir, 'webgw'), [nginx.port, iperfServer.port]);
delete process.env.NODE_OPTIONS;
const duration = Number(seconds);
if (load.startsWith('iperf')) console.log(await iperf({ port: webgw.ports[1]!, streams: 1, reverse: load === 'iperf-r', durationSec: duration, pids: webgw.pids }));
else console.log(await wrk({ url: `http://127.0.0.1:${webgw.http!.port}/${load === 'http-1m' ? '1m' : '1k'}`, host: webgw.http!.host, connections: 64, durationSec: duration }));
await webgw.stop();
await iperfServer.stop();
await nginx.stop();
rmSync(dir, { recursive: true, force: true });
for (const f of readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'))) console.log(`\n== ${f}\n${summary(join(profDir, f))}`);
