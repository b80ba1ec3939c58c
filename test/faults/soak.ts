/**
 * The soak (issue 17): a gateway and two agents as real `webgw` processes under mixed load for
 * a while — keep-alive and churned HTTP, WebSocket echo, TCP echo, back-to-back bulk downloads —
 * with one agent restarted (SIGTERM, drain, start) now and then. Every exchange is checked
 * (digests, echoes) and counted. Every sampleEveryS the gateway's and the steady agent's RSS,
 * heap, open file descriptors and longest event-loop delay are taken; the result gives the slope
 * of each after warm-up (least squares), which a run with no leak keeps near zero.
 *
 * `npm run soak` runs it for 30 minutes (soak-cli.ts, results and plots in bench/results); the
 * faults suite runs a 2-minute form.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent, request } from 'node:http';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { writeKeyPair } from '../../src/pki/files.ts';
import { createCA, issueAgentCertificate, issueServerCertificate } from '../../src/pki/issue.ts';
import { TempDir, hours } from '../helpers/fixture.ts';
import { freeWildcardPort } from '../helpers/ports.ts';
import { spawnWebgw, type WebgwProcess } from '../helpers/processes.ts';
import { HOST, download, startPayloadBackend } from './link-fixture.ts';

export interface SoakOptions {
  seconds: number;
  sampleEveryS: number;
  /** Samples before this are left out of the slopes (caches, JIT and pools filling). */
  warmupS: number;
  restartAgentEveryS: number;
  bulkBytes?: number;
  progress?: (line: string) => void;
}

export interface ProcessSample {
  rssMiB: number;
  heapMiB: number;
  fds: number;
  loopDelayMaxMs: number;
}

export interface SoakSample {
  t: number;
  gateway: ProcessSample;
  agent: ProcessSample;
}

export interface Counts {
  ok: number;
  failed: number;
  seen: Record<string, number>;
}

export interface SoakResult {
  seconds: number;
  samples: SoakSample[];
  load: Record<string, Counts>;
  agentRestarts: number;
  /** Error-level log lines of the gateway and agents, and processes that exited on their own. */
  unexpected: string[];
  /** Per hour, after warm-up: MiB of RSS and heap, descriptors. */
  slopes: Record<'gateway' | 'agent', { rssMiBPerHour: number; heapMiBPerHour: number; fdsPerHour: number }>;
}

const MiB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Least-squares slope of y over t (seconds), per hour. */
export function slopePerHour(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mt = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [t, y] of points) {
    num += (t - mt) * (y - my);
    den += (t - mt) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 3600;
}

async function metric(port: number, name: string): Promise<number> {
  const text = await new Promise<string>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/metrics', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

async function sample(proc: WebgwProcess, adminPort: number, prefix: string): Promise<ProcessSample> {
  const pid = proc.proc.pid!;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    rssMiB: Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024,
    heapMiB: (await metric(adminPort, `${prefix}nodejs_heap_size_used_bytes`)) / MiB,
    fds: readdirSync(`/proc/${pid}/fd`).length,
    loopDelayMaxMs: (await metric(adminPort, `${prefix}nodejs_eventloop_lag_max_seconds`)) * 1000,
  };
}

async function tcpEchoServer(): Promise<Server> {
  const server = createServer((s) => void pipeline(s, s).catch(() => {}));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

/** Sends 64 KiB over TCP through the gateway and expects them back. */
function tcpRound(port: number): Promise<string> {
  const data = randomBytes(64 * 1024);
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => finish('no echo in 10 s'), 10_000);
    const finish = (seen: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(seen);
    };
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= data.length) finish(Buffer.concat(chunks).equals(data) ? 'ok' : 'wrong echo');
    });
    socket.on('error', (err) => finish(err.message));
    socket.on('close', () => finish(got < data.length ? 'closed early' : 'ok'));
    socket.write(data);
  });
}

/** Ten 1 KiB WebSocket messages through the gateway, each echoed. */
function wsRound(port: number): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { host: HOST } });
    let left = 10;
    let last: Buffer | undefined;
    const timer = setTimeout(() => finish('no echo in 10 s'), 10_000);
    const finish = (seen: string): void => {
      clearTimeout(timer);
      ws.terminate();
      resolve(seen);
    };
    const next = (): void => {
      last = randomBytes(1024);
      ws.send(last);
    };
    ws.on('open', next);
    ws.on('message', (m: Buffer) => {
      if (!last || !m.equals(last)) return finish('wrong echo');
      if (--left === 0) {
        ws.close();
        clearTimeout(timer);
        resolve('ok');
      } else next();
    });
    ws.on('error', (err) => finish(err.message));
  });
}

function get(port: number, agent: HttpAgent | false): Promise<string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/small', headers: { host: HOST }, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 && body === 'small' ? 'ok' : `status ${res.statusCode}`));
      res.on('error', (err) => resolve(err.message));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
    req.on('error', (err) => resolve(err.message));
    req.end();
  });
}

export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const say = opts.progress ?? (() => {});
  const dir = new TempDir();
  const ca = createCA('soak CA', hours(48));
  await writeKeyPair(dir.path, 'ca', ca);
  await writeKeyPair(dir.path, 'gateway', issueServerCertificate(ca, ['127.0.0.1'], hours(48)));
  const [tunnelPort, httpPort, tcpPort, gwAdmin, agentAdmin0, agentAdmin1] = await Promise.all(
    Array.from({ length: 6 }, () => freeWildcardPort()),
  );
  const http = await startPayloadBackend();
  const wss = new WebSocketServer({ server: http.server, path: '/ws', maxPayload: 64 * 1024 });
  wss.on('connection', (ws) => ws.on('message', (m: Buffer) => ws.send(m)));
  const echo = await tcpEchoServer();
  const gatewayConfig = dir.file('gateway.json');
  writeFileSync(
    gatewayConfig,
    JSON.stringify({
      name: 'soak',
      tunnel: {
        address: '127.0.0.1',
        port: tunnelPort,
        caFile: 'ca.crt',
        certFile: 'gateway.crt',
        keyFile: 'gateway.key',
      },
      listeners: {
        http: { address: '127.0.0.1', port: httpPort },
        tcp: { address: '127.0.0.1', portRange: { from: tcpPort, to: tcpPort } },
      },
      admin: { address: '127.0.0.1', port: gwAdmin },
      limits: { agentWaitMs: 5000 },
    }),
  );
  const agentConfig = async (i: number, admin: number): Promise<string> => {
    const grants = {
      http: [HOST],
      https: [],
      tls: [],
      tlsTerminated: [],
      tcp: [tcpPort!],
      h2c: [],
      identity: 'soak/app',
    };
    await writeKeyPair(dir.path, `agent-${i}`, issueAgentCertificate(ca, grants, hours(48)));
    const file = dir.file(`agent-${i}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        name: `soak-${i}`,
        gateways: [
          {
            name: 'soak',
            endpoints: [`wss://127.0.0.1:${tunnelPort}`],
            caFile: 'ca.crt',
            certFile: `agent-${i}.crt`,
            keyFile: `agent-${i}.key`,
          },
        ],
        routes: [
          { protocol: 'http', hostname: HOST, backend: `127.0.0.1:${http.port}` },
          { protocol: 'tcp', port: tcpPort, backend: `127.0.0.1:${(echo.address() as AddressInfo).port}` },
        ],
        admin: { address: '127.0.0.1', port: admin },
      }),
    );
    return file;
  };
  const unexpected: string[] = [];
  const watch = (name: string, p: WebgwProcess, expectedExit: () => boolean): WebgwProcess => {
    p.proc.on('exit', (code, signal) => {
      if (!expectedExit()) unexpected.push(`${name} exited (${code ?? signal})`);
    });
    return p;
  };
  let stopping = false;
  const gateway = watch('gateway', spawnWebgw(['gateway', '--config', gatewayConfig]), () => stopping);
  const configs = [await agentConfig(0, agentAdmin0!), await agentConfig(1, agentAdmin1!)];
  const agents: WebgwProcess[] = [];
  let restarting = false;
  const startAgent = (i: number): WebgwProcess =>
    watch(`agent ${i}`, spawnWebgw(['agent', '--config', configs[i]!]), () => stopping || (i === 1 && restarting));
  agents.push(startAgent(0), startAgent(1));
  await gateway.waitForLog((l) => l.msg === 'tunnel endpoint listening', 20_000);
  const deadline = Date.now() + 20_000;
  while (gateway.logs.filter((l) => l.msg === 'agent connected').length < 2) {
    if (Date.now() > deadline) throw new Error(`agents did not connect: ${JSON.stringify(gateway.logs.slice(-5))}`);
    await sleep(50);
  }

  const load: Record<string, Counts> = {};
  const count = (kind: string, seen: string): void => {
    const c = (load[kind] ??= { ok: 0, failed: 0, seen: {} });
    if (seen === 'ok') c.ok++;
    else {
      c.failed++;
      c.seen[seen] = (c.seen[seen] ?? 0) + 1;
    }
  };
  const started = Date.now();
  const until = started + opts.seconds * 1000;
  const keepAlive = new HttpAgent({ keepAlive: true, maxSockets: 4 });
  const loop = async (kind: string, pauseMs: number, fn: () => Promise<string>): Promise<void> => {
    while (Date.now() < until) {
      count(kind, await fn());
      await sleep(pauseMs);
    }
  };
  const loops = [
    ...Array.from({ length: 4 }, () => loop('http keep-alive', 5, () => get(httpPort!, keepAlive))),
    ...Array.from({ length: 2 }, () => loop('http new connection', 10, () => get(httpPort!, false))),
    loop('websocket', 20, () => wsRound(httpPort!)),
    loop('tcp', 20, () => tcpRound(tcpPort!)),
    loop('bulk', 0, async () => (await download(httpPort!, opts.bulkBytes ?? 16 * MiB, 60_000)).seen),
  ];

  const samples: SoakSample[] = [];
  let agentRestarts = 0;
  const sampler = (async () => {
    let nextRestart = started + opts.restartAgentEveryS * 1000;
    while (Date.now() < until) {
      await sleep(Math.min(opts.sampleEveryS * 1000, Math.max(0, until - Date.now())));
      const t = (Date.now() - started) / 1000;
      samples.push({
        t,
        gateway: await sample(gateway, gwAdmin!, 'webgw_gateway_'),
        agent: await sample(agents[0]!, agentAdmin0!, 'webgw_agent_'),
      });
      const s = samples.at(-1)!;
      say(
        `t=${t.toFixed(0)} s gateway ${s.gateway.rssMiB.toFixed(0)} MiB/${s.gateway.fds} fds, agent ${s.agent.rssMiB.toFixed(0)} MiB/${s.agent.fds} fds; ` +
          Object.entries(load)
            .map(([k, c]) => `${k} ${c.ok}/${c.failed}`)
            .join(', '),
      );
      if (Date.now() >= nextRestart && Date.now() < until - 5000) {
        restarting = true;
        await agents[1]!.stop();
        restarting = false;
        agents[1] = startAgent(1);
        agentRestarts++;
        nextRestart = Date.now() + opts.restartAgentEveryS * 1000;
      }
    }
  })();
  await Promise.all([...loops, sampler]);
  keepAlive.destroy();
  stopping = true;
  for (const a of agents) await a.stop();
  await gateway.stop();
  for (const [name, p] of [
    ['gateway', gateway],
    ['agent 0', agents[0]!],
    ['agent 1', agents[1]!],
  ] as const)
    for (const l of p.logs) if (l.level === 'error') unexpected.push(`${name}: ${JSON.stringify(l)}`);
  wss.close();
  http.server.close();
  echo.close();
  dir.remove();

  const after = samples.filter((s) => s.t >= opts.warmupS);
  const slopes = (who: 'gateway' | 'agent') => ({
    rssMiBPerHour: slopePerHour(after.map((s) => [s.t, s[who].rssMiB])),
    heapMiBPerHour: slopePerHour(after.map((s) => [s.t, s[who].heapMiB])),
    fdsPerHour: slopePerHour(after.map((s) => [s.t, s[who].fds])),
  });
  return {
    seconds: opts.seconds,
    samples,
    load,
    agentRestarts,
    unexpected,
    slopes: { gateway: slopes('gateway'), agent: slopes('agent') },
  };
}
