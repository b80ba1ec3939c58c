/**
 * One gateway, one agent whose tunnel runs through a Toxiproxy proxy, and a backend that serves
 * and checks deterministic payloads: what the fault tests degrade, and how they count. Every
 * transfer is checked by SHA-256 at the far end; a response is "ok" only when its status is 200,
 * its length is the promised one and its digest is right; anything else is recorded as what the
 * client saw.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { request } from 'node:http';
import { startHttpBackend } from '../helpers/http-client.ts';
import { startAgent, startGateway, waitFor, type GatewayFixture } from '../helpers/fixture.ts';
import type { Agent } from '../../src/agent/agent.ts';
import type { Toxiproxy, ToxicProxy } from './toxiproxy.ts';

export const HOST = 'app.localhost';
/** Dead-peer detection in these tests: a ping every 250 ms, dropped after 4 missed (≤ 1.25 s). */
export const KEEPALIVE = { intervalMs: 250, missedPongs: 4 };

/**
 * Deterministic bytes for a size (AES-CTR over zeros, keyed by the size: fast, and the same on
 * both ends without sending a digest along), made once per size: the backend runs in the
 * test's process, and generating 64 MiB per request would stall the gateway and agent with it.
 */
const payloads = new Map<number, { bytes: Buffer; sha: string }>();
function made(size: number): { bytes: Buffer; sha: string } {
  let p = payloads.get(size);
  if (!p) {
    const key = createHash('sha256').update(`webgw-faults-${size}`).digest().subarray(0, 16);
    const bytes = createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
    p = { bytes, sha: createHash('sha256').update(bytes).digest('hex') };
    payloads.set(size, p);
  }
  return p;
}
export const payload = (size: number): Buffer => made(size).bytes;
export const payloadSha = (size: number): string => made(size).sha;

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** GET /blob/<n>: n bytes of payload(n). POST /sha: the body's digest and length. */
export function startPayloadBackend(address = '127.0.0.1'): ReturnType<typeof startHttpBackend> {
  return startHttpBackend((req, res) => {
    const blob = /^\/blob\/(\d+)$/.exec(req.url ?? '');
    if (req.method === 'GET' && blob) {
      const body = payload(Number(blob[1]));
      res.writeHead(200, { 'content-length': body.length }).end(body);
      return;
    }
    if (req.method === 'POST' && req.url === '/sha') {
      const hash = createHash('sha256');
      let length = 0;
      req.on('data', (c: Buffer) => {
        hash.update(c);
        length += c.length;
      });
      req.on('end', () => res.end(JSON.stringify({ sha256: hash.digest('hex'), length })));
      return;
    }
    res.end('small');
  }, address);
}

export interface Outcome {
  /** Checked end to end: status 200 and the exact bytes. */
  ok: boolean;
  status: number;
  ms: number;
  /** What the client saw when not ok: a status, a reset, a short body, a wrong digest. */
  seen: string;
  /** A 200 with every byte but the wrong ones: must never happen. */
  corrupt: boolean;
}

interface Request {
  method: 'GET' | 'POST';
  path: string;
  body?: Buffer;
  timeoutMs: number;
  /** The digest a complete answer must have (for a GET), or the body's (for a POST /sha). */
  expectSha?: string;
}

export function exchange(httpPort: number, r: Request): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (o: Omit<Outcome, 'ms'>): void => {
      if (done) return;
      done = true;
      resolve({ ...o, ms: Math.round(performance.now() - started) });
    };
    const req = request(
      {
        host: '127.0.0.1',
        port: httpPort,
        path: r.path,
        method: r.method,
        agent: false,
        headers: { host: HOST, ...(r.body ? { 'content-length': r.body.length } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => finish({ ok: false, status: res.statusCode ?? 0, seen: err.message, corrupt: false }));
        res.on('aborted', () => finish({ ok: false, status: res.statusCode ?? 0, seen: 'aborted', corrupt: false }));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const status = res.statusCode ?? 0;
          if (status !== 200) return finish({ ok: false, status, seen: `status ${status}`, corrupt: false });
          const got = r.method === 'POST' ? (JSON.parse(body.toString()) as { sha256: string }).sha256 : sha256(body);
          const right = r.expectSha === undefined || got === r.expectSha;
          finish({ ok: right, status, seen: right ? 'ok' : 'wrong digest', corrupt: !right });
        });
      },
    );
    req.setTimeout(r.timeoutMs, () => {
      req.destroy();
      finish({ ok: false, status: 0, seen: `no answer in ${r.timeoutMs} ms`, corrupt: false });
    });
    req.on('error', (err) => finish({ ok: false, status: 0, seen: err.message, corrupt: false }));
    req.end(r.body);
  });
}

export const download = (httpPort: number, size: number, timeoutMs = 30_000): Promise<Outcome> =>
  exchange(httpPort, { method: 'GET', path: `/blob/${size}`, timeoutMs, expectSha: payloadSha(size) });

export const upload = (httpPort: number, size: number, timeoutMs = 30_000): Promise<Outcome> => {
  return exchange(httpPort, {
    method: 'POST',
    path: '/sha',
    body: payload(size),
    timeoutMs,
    expectSha: payloadSha(size),
  });
};

export const small = (httpPort: number, timeoutMs = 10_000): Promise<Outcome> =>
  exchange(httpPort, { method: 'GET', path: '/small', timeoutMs });

export interface Link {
  gw: GatewayFixture;
  agent: Agent;
  proxy: ToxicProxy;
  toxiproxy: Toxiproxy;
  /** Waits until a small request succeeds again; resolves with how long that took. */
  untilServing(timeoutMs?: number): Promise<number>;
  close(): Promise<void>;
}

/** Gateway ← Toxiproxy ← agent → backend, the agent connected and serving. */
export async function startLink(name: string, toxiproxy: Toxiproxy): Promise<Link> {
  const backend = await startPayloadBackend();
  const gw = await startGateway({ keepalive: KEEPALIVE });
  const proxy = await toxiproxy.proxy(name, gw.addresses.tunnel.port);
  const creds = await gw.issueAgent('app', { http: [HOST] });
  const { agent } = await startAgent(
    [{ endpoints: [`wss://127.0.0.1:${proxy.port}`], credentials: creds }],
    [{ protocol: 'http', hostname: HOST, backend: `127.0.0.1:${backend.port}` }],
    { keepalive: KEEPALIVE, reconnect: { initialMs: 50, maxMs: 250 } },
  );
  await waitFor(() => gw.gateway.agentCount === 1, 10_000, 'agent connected');
  const untilServing = async (timeoutMs = 30_000): Promise<number> => {
    const started = performance.now();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if ((await small(gw.httpPort, 2000)).ok) return Math.round(performance.now() - started);
      if (Date.now() > deadline) throw new Error(`not serving again within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return {
    gw,
    agent,
    proxy,
    toxiproxy,
    untilServing,
    async close() {
      await agent.close(500);
      await gw.stop();
      backend.server.close();
      gw.dir.remove();
    },
  };
}
