/**
 * Hostile HTTP clients and backends against the real gateway and agent (issue 12): no input ends
 * the process, requests never cross between clients, a declined upgrade never becomes a relay,
 * and what a backend sends cannot split a response.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  connect,
  createServer as createNetServer,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import type { Server } from 'node:http';
import { get, rawExchange, startHttpBackend } from '../helpers/http-client.ts';
import { startAgent, startGateway, waitFor, type GatewayFixture } from '../helpers/fixture.ts';
import { repoRoot } from '../helpers/processes.ts';
import { SMUGGLED_PATH, smugglingVectors } from '../helpers/smuggling-corpus.ts';
import type { Agent } from '../../src/agent/agent.ts';

/** A raw backend: answers each connection's first request head with `answer`, records every byte. */
async function rawBackend(answer: string): Promise<{ server: NetServer; port: number; received: () => string }> {
  let received = '';
  const server = createNetServer((socket: Socket) => {
    let head = '';
    let answered = false;
    socket.on('data', (c: Buffer) => {
      received += c.toString('latin1');
      head += c.toString('latin1');
      if (!answered && head.includes('\r\n\r\n')) {
        answered = true;
        socket.write(answer);
      }
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, received: () => received };
}

describe('hostile HTTP clients and backends', () => {
  let gw: GatewayFixture;
  let agent: Agent;
  let backend: Server;
  const paths: string[] = [];
  const headers: Array<Record<string, string | string[] | undefined>> = [];
  let declining: Awaited<ReturnType<typeof rawBackend>>;
  let splitting: Awaited<ReturnType<typeof rawBackend>>;

  beforeAll(async () => {
    ({ server: backend } = await startHttpBackend((req, res) => {
      paths.push(req.url ?? '');
      headers.push(req.headers);
      req.resume();
      req.on('end', () => res.end(`served ${req.url}`));
    }));
    const backendPort = (backend.address() as AddressInfo).port;
    declining = await rawBackend('HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nno thank');
    splitting = await rawBackend(
      'HTTP/1.1 200 OK\r\nX-Note: a\nSet-Cookie: session=attacker\r\nContent-Length: 2\r\n\r\nok',
    );
    gw = await startGateway({ limits: { headerTimeoutMs: 1000, maxHeaderBytes: 16384, responseTimeoutMs: 2000 } });
    const creds = await gw.issueAgent('web', { http: ['app.localhost', 'declines.localhost', 'splits.localhost'] });
    ({ agent } = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: creds }],
      [
        { protocol: 'http', hostname: 'app.localhost', backend: `127.0.0.1:${backendPort}` },
        { protocol: 'http', hostname: 'declines.localhost', backend: `127.0.0.1:${declining.port}` },
        { protocol: 'http', hostname: 'splits.localhost', backend: `127.0.0.1:${splitting.port}` },
      ],
    ));
    await waitFor(() => gw.gateway.agentCount === 1);
  });

  afterAll(async () => {
    await agent.close(1000);
    await gw.stop();
    backend.closeAllConnections();
    backend.close();
    declining.server.close();
    splitting.server.close();
    gw.dir.remove();
  });

  it.each(smugglingVectors('app.localhost'))(
    '%s: at most one request reaches the backend, nothing is smuggled',
    async (_name, request) => {
      const res = await rawExchange(gw.httpPort, request, 1500);
      // One answer per request the gateway accepted; the smuggled one never exists.
      expect(paths).not.toContain(SMUGGLED_PATH);
      expect(res.text).not.toContain(`served ${SMUGGLED_PATH}`);
      expect(res.text).toMatch(/^HTTP\/1\.1 (200|400|431) /);
    },
  );

  it('forwards a declined upgrade as a response, ends the connection, and never relays what followed', async () => {
    const res = await rawExchange(
      gw.httpPort,
      'GET /ws HTTP/1.1\r\nHost: declines.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' +
        'GET /other-tenant HTTP/1.1\r\nHost: app.localhost\r\n\r\n',
      3000,
    );
    expect(res.text).toMatch(/^HTTP\/1\.1 200 [\s\S]*Connection: close\r\n\r\nno thank$/);
    expect(res.closed).toBe(true);
    expect(declining.received()).toContain('GET /ws HTTP/1.1');
    expect(declining.received()).not.toContain('/other-tenant');
    expect(paths).not.toContain('/other-tenant');
  });

  it('answers 502 to a backend response that would split into more fields downstream', async () => {
    const res = await get(gw.httpPort, 'splits.localhost');
    expect(res.status).toBe(502);
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('replaces client-sent Forwarded, X-Forwarded-Port, -Proto, -Host and X-Real-IP', async () => {
    headers.length = 0;
    const res = await get(gw.httpPort, 'app.localhost', '/fwd', undefined, {
      forwarded: 'for=203.0.113.9;proto=https',
      'x-forwarded-port': '443',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'bank.example',
      'x-real-ip': '203.0.113.9',
    });
    expect(res.status).toBe(200);
    const seen = headers.at(-1)!;
    expect(seen.forwarded).toBeUndefined();
    expect(seen['x-real-ip']).toBeUndefined();
    expect(seen['x-forwarded-port']).toBe(String(gw.httpPort));
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-host']).toBe('app.localhost');
  });
});

describe('npm start under hostile requests', () => {
  it('keeps serving after every vector, sent again and again', async () => {
    const demo = spawn(process.execPath, ['src/cli/main.ts', 'demo', '--port', '0'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    demo.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    demo.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    try {
      await waitFor(() => /Ctrl-C stops it/.test(stdout) || demo.exitCode !== null, 30_000, 'the demo to start');
      const port = Number(/open\s+http:\/\/hello\.localhost:(\d+)\//.exec(stdout)![1]);
      for (let round = 0; round < 3; round++) {
        for (const [, request] of smugglingVectors('hello.localhost')) {
          await rawExchange(port, request, 3000);
          expect(demo.exitCode).toBeNull();
        }
      }
      const res = await get(port, 'hello.localhost');
      expect(res.status).toBe(200);
      expect(demo.exitCode).toBeNull();
      expect(stderr).not.toMatch(/"level":"error"|Unhandled|Error:/);
    } finally {
      demo.kill('SIGKILL');
    }
  }, 120_000);
});

describe('a client holding many connections', () => {
  it('gets no more than maxConnectionsPerClient, and another client is still served', async () => {
    const { server: app, port: appPort } = await startHttpBackend((_req, res) => res.end('ok'));
    const gw = await startGateway({ limits: { maxConnectionsPerClient: 20, headerTimeoutMs: 30_000 } });
    const creds = await gw.issueAgent('web', { http: ['app.localhost'] });
    const { agent } = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: creds }],
      [{ protocol: 'http', hostname: 'app.localhost', backend: `127.0.0.1:${appPort}` }],
    );
    await waitFor(() => gw.gateway.agentCount === 1);
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const s = connect(gw.httpPort, '127.0.0.1');
        s.on('error', () => {});
        await once(s, 'connect');
        held.push(s);
      }
      // The 21st from the same address is closed at once, without an answer.
      const refused = await rawExchange(gw.httpPort, 'GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n', 3000);
      expect(refused).toMatchObject({ text: '', closed: true });
      // Another client address is served meanwhile.
      const other = await new Promise<string>((resolve, reject) => {
        const s = connect({ port: gw.httpPort, host: '127.0.0.1', localAddress: '127.0.0.2' });
        let text = '';
        s.on('data', (c: Buffer) => (text += c.toString()));
        s.on('end', () => resolve(text));
        s.on('error', reject);
        s.write('GET / HTTP/1.1\r\nHost: app.localhost\r\nConnection: close\r\n\r\n');
      });
      expect(other).toMatch(/^HTTP\/1\.1 200[\s\S]*ok$/);
      expect(
        gw.log.lines.some((l) => l.msg === 'connection refused: the client holds the most connections allowed'),
      ).toBe(true);
      // Once it lets go of some, the first client is served again.
      for (const s of held.splice(0, 5)) s.destroy();
      await waitFor(
        async () => (await get(gw.httpPort, 'app.localhost').catch(() => ({ status: 0 }))).status === 200,
        5000,
        'the client to be served again',
      );
    } finally {
      for (const s of held) s.destroy();
      await agent.close(500);
      await gw.stop();
      app.close();
      gw.dir.remove();
    }
  });
});
