import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Agent as HttpAgent, createServer, request as httpRequest, type ClientRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { get, rawExchange } from '../helpers/http-client.ts';
import { startAgent, startGateway, waitFor, type GatewayFixture } from '../helpers/fixture.ts';
import type { Agent } from '../../src/agent/agent.ts';

describe('HTTP through the tunnel', () => {
  let gw: GatewayFixture;
  let backend: Server;
  let backendPort: number;
  let agent: Agent;
  let backendConnections = 0;
  const seen: Array<Record<string, string | string[] | undefined>> = [];

  beforeAll(async () => {
    backend = createServer((req, res) => {
      seen.push(req.headers);
      if (req.url === '/slow') return; // never answers
      if (req.url === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('part one, ');
        setTimeout(() => res.end('part two'), 10);
        return;
      }
      if (req.url === '/not-modified') {
        res.writeHead(304, { etag: '"v1"' }).end();
        return;
      }
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
      });
      req.on('end', () => {
        const body = JSON.stringify({
          path: req.url,
          method: req.method,
          xff: req.headers['x-forwarded-for'],
          proto: req.headers['x-forwarded-proto'],
          xhost: req.headers['x-forwarded-host'],
          ...(bytes > 0 ? { bytes, sha256: hash.digest('hex') } : {}),
        });
        res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive' }).end(body);
      });
    });
    backend.on('connection', () => backendConnections++);
    const wss = new WebSocketServer({ server: backend });
    wss.on('connection', (ws, req) => {
      ws.send(`hello ${req.headers['x-forwarded-for']}`);
      ws.on('message', (m, isBinary) => ws.send(m, { binary: isBinary }));
    });
    backend.listen(0, '127.0.0.1');
    await once(backend, 'listening');
    backendPort = (backend.address() as AddressInfo).port;
    gw = await startGateway({ limits: { headerTimeoutMs: 500, maxHeaderBytes: 4096, responseTimeoutMs: 1000 } });
    const creds = await gw.issueAgent('web', { http: ['app.localhost', 'gone.localhost'] });
    ({ agent } = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: creds }],
      [
        { protocol: 'http', hostname: 'app.localhost', backend: `127.0.0.1:${backendPort}` },
        // Granted, but nothing listens there: 502.
        { protocol: 'http', hostname: 'gone.localhost', backend: '127.0.0.1:1' },
      ],
    ));
    await waitFor(() => gw.gateway.agentCount === 1);
  });

  afterAll(async () => {
    await agent.close(1000);
    await gw.stop();
    backend.closeAllConnections();
    backend.close();
    gw.dir.remove();
  });

  it('routes by Host and keeps connections alive on both sides', async () => {
    const keepAlive = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    const before = backendConnections;
    for (let i = 0; i < 20; i++) {
      const res = await get(gw.httpPort, 'App.Localhost:80', `/item/${i}`, keepAlive);
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ path: `/item/${i}`, method: 'GET' });
    }
    // One client connection, and the backend connection behind the pooled stream was reused.
    expect(Object.values(keepAlive.freeSockets).flat()).toHaveLength(1);
    expect(backendConnections - before).toBeLessThanOrEqual(1);
    keepAlive.destroy();
  });

  it('sets X-Forwarded-For/-Proto/-Host for the backend', async () => {
    const res = await get(gw.httpPort, 'app.localhost', '/', undefined, { 'x-forwarded-for': '198.51.100.7' });
    expect(JSON.parse(res.body)).toEqual({
      path: '/',
      method: 'GET',
      xff: '198.51.100.7, 127.0.0.1',
      proto: 'http',
      xhost: 'app.localhost',
    });
  });

  it('passes a POST body both ways', async () => {
    const body = 'x'.repeat(300_000);
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: gw.httpPort,
          method: 'POST',
          path: '/upload',
          headers: { host: 'app.localhost', 'content-length': body.length },
        },
        (r) => {
          let text = '';
          r.on('data', (c: Buffer) => (text += c.toString()));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({
      method: 'POST',
      bytes: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
    });
  });

  /** POST /upload without a Content-Length (so chunked); `send` writes the body and ends it. */
  function chunkedUpload(send: (req: ClientRequest) => void): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: gw.httpPort, method: 'POST', path: '/upload', headers: { host: 'app.localhost' } },
        (r) => {
          let text = '';
          r.on('data', (c: Buffer) => (text += c.toString()));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      send(req);
    });
  }

  it('streams a chunked upload and a chunked response', async () => {
    const sent = Array.from({ length: 50 }, (_v, i) => `piece-${i};`).join('');
    const res = await chunkedUpload((req) => {
      for (let i = 0; i < 50; i++) req.write(`piece-${i};`); // no Content-Length: chunked
      req.end();
    });
    expect(JSON.parse(res.body)).toMatchObject({
      bytes: sent.length,
      sha256: createHash('sha256').update(sent).digest('hex'),
    });
    const chunked = await get(gw.httpPort, 'app.localhost', '/chunked');
    expect(chunked.headers['transfer-encoding']).toBe('chunked');
    expect(chunked.body).toBe('part one, part two');
  });

  it('streams a chunked upload of 16 MiB intact while the tunnel stream pushes back', async () => {
    // 64 KiB pieces fill the tunnel stream's buffer, so its writes ask to wait: every part of
    // each chunk (size line, data, CRLF) must still go upstream.
    const piece = randomBytes(64 * 1024);
    const hash = createHash('sha256');
    const res = await chunkedUpload((req) => {
      let sent = 0;
      const pump = (): void => {
        while (sent < 256) {
          sent += 1;
          hash.update(piece);
          if (!req.write(piece)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ bytes: 256 * piece.length, sha256: hash.digest('hex') });
  });

  it('passes HEAD, 304 and Expect: 100-continue', async () => {
    const head = await new Promise<number>((resolve, reject) => {
      httpRequest(
        { host: '127.0.0.1', port: gw.httpPort, method: 'HEAD', path: '/', headers: { host: 'app.localhost' } },
        (r) => {
          r.resume();
          r.on('end', () => resolve(r.statusCode ?? 0));
        },
      )
        .on('error', reject)
        .end();
    });
    expect(head).toBe(200);
    const notModified = await get(gw.httpPort, 'app.localhost', '/not-modified');
    expect([notModified.status, notModified.headers.etag, notModified.body]).toEqual([304, '"v1"', '']);
    const cont = await new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: gw.httpPort,
          method: 'PUT',
          path: '/upload',
          headers: { host: 'app.localhost', expect: '100-continue', 'content-length': 4 },
        },
        (r) => {
          r.resume();
          r.on('end', () => resolve({ status: r.statusCode ?? 0, continued }));
        },
      );
      req.on('continue', () => {
        continued = true;
        req.end('data');
      });
      req.on('error', reject);
    });
    expect(cont).toEqual({ status: 200, continued: true });
    // The keep-alive pool still works after all of these.
    expect((await get(gw.httpPort, 'app.localhost', '/after')).status).toBe(200);
  });

  it('relays a WebSocket echo', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${gw.httpPort}/socket`, { headers: { host: 'app.localhost' } });
    const [greeting] = await once(ws, 'message');
    expect(greeting.toString()).toBe('hello 127.0.0.1');
    ws.send('ping through the tunnel');
    const [echo] = await once(ws, 'message');
    expect(echo.toString()).toBe('ping through the tunnel');
    ws.close();
    await once(ws, 'close');
  });

  it('answers 404 for an unknown host', async () => {
    const res = await get(gw.httpPort, 'nobody.localhost');
    expect(res.status).toBe(404);
    expect(res.body).toMatch(/no service is exposed as nobody.localhost/);
  });

  it('answers 400 without a Host header', async () => {
    const res = await rawExchange(gw.httpPort, 'GET / HTTP/1.0\r\n\r\n');
    expect(res.text).toMatch(/^HTTP\/1.1 400/);
  });

  it('answers 431 for oversized headers', async () => {
    const res = await rawExchange(
      gw.httpPort,
      `GET / HTTP/1.1\r\nHost: app.localhost\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`,
    );
    expect(res.text).toMatch(/^HTTP\/1.1 431/);
  });

  it('answers 400 to garbage and closes', async () => {
    const res = await rawExchange(gw.httpPort, Buffer.from([0, 1, 2, 3, 255, 254, 13, 10, 13, 10]));
    expect(res.text).toMatch(/^HTTP\/1.1 400/);
    expect(res.closed).toBe(true);
  });

  it('answers pipelined requests in order on one connection, and HTTP/1.0 without keep-alive gets its close', async () => {
    const two =
      'GET /p1 HTTP/1.1\r\nHost: app.localhost\r\n\r\nGET /chunked HTTP/1.1\r\nHost: app.localhost\r\nConnection: close\r\n\r\n';
    const res = await rawExchange(gw.httpPort, two);
    expect(res.closed).toBe(true);
    const responses = res.text.split(/(?=HTTP\/1\.1 )/);
    expect(responses).toHaveLength(2);
    expect(responses[0]).toMatch(/^HTTP\/1\.1 200[\s\S]*"path":"\/p1"/);
    // A body of unknown length reaches an HTTP/1.1 client chunk-coded.
    expect(responses[1]).toMatch(
      /^HTTP\/1\.1 200[\s\S]*Transfer-Encoding: chunked[\s\S]*part one, [\s\S]*part two\r\n0\r\n\r\n$/,
    );
    const old = await rawExchange(gw.httpPort, 'GET /chunked HTTP/1.0\r\nHost: app.localhost\r\n\r\n');
    expect(old.closed).toBe(true);
    expect(old.text).toMatch(/^HTTP\/1\.1 200[\s\S]*Connection: close\r\n\r\npart one, part two$/);
  });

  it('refuses a request whose body framing is ambiguous (smuggling) and closes', async () => {
    const res = await rawExchange(
      gw.httpPort,
      'POST /x HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.localhost\r\n\r\n',
    );
    expect(res.text).toMatch(/^HTTP\/1\.1 400/);
    expect(res.text).not.toMatch(/smuggled/);
    expect(res.closed).toBe(true);
  });

  it('answers a request whose body it will not read, then closes instead of waiting for the body', async () => {
    const res = await rawExchange(
      gw.httpPort,
      `POST /upload HTTP/1.1\r\nHost: nobody.localhost\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(1000)}`,
    );
    expect(res.text).toMatch(/^HTTP\/1\.1 404[\s\S]*Connection: close/);
    expect(res.closed).toBe(true);
    expect(res.elapsedMs).toBeLessThan(2000);
  });

  it('closes a slowloris client after the header timeout', async () => {
    const res = await rawExchange(gw.httpPort, 'GET / HTTP/1.1\r\nHost: app.localhost\r\nX-Slow: ', 5000);
    expect(res.closed).toBe(true);
    expect(res.elapsedMs).toBeLessThan(3000);
  });

  it('answers 502 when the backend cannot be reached', async () => {
    const res = await get(gw.httpPort, 'gone.localhost');
    expect(res.status).toBe(502);
  });

  it('answers 504 when the backend does not answer in time', async () => {
    const res = await get(gw.httpPort, 'app.localhost', '/slow');
    expect(res.status).toBe(504);
  });

  it('keeps serving other clients after all that', async () => {
    const res = await get(gw.httpPort, 'app.localhost', '/still');
    expect(res.status).toBe(200);
  });

  it('serves /healthz, /readyz and /metrics on the admin listener', async () => {
    const admin = gw.addresses.admin!.port;
    expect((await get(admin, 'x', '/healthz')).status).toBe(200);
    expect((await get(admin, 'x', '/readyz')).status).toBe(200);
    const metrics = await get(admin, 'x', '/metrics');
    expect(metrics.body).toMatch(
      /webgw_gateway_http_request_duration_seconds_count\{route="app.localhost",code="200"\} \d+/,
    );
    expect(metrics.body).toMatch(/webgw_gateway_agent_sessions 1/);
  });
});

describe('HTTP without an agent', () => {
  it('answers 503 once the agent of a route has left', async () => {
    const gw = await startGateway();
    const creds = await gw.issueAgent('web', { http: ['left.localhost'] });
    const { agent } = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: creds }],
      [{ protocol: 'http', hostname: 'left.localhost', backend: '127.0.0.1:1' }],
    );
    await waitFor(() => gw.gateway.agentCount === 1);
    await agent.close(1000);
    await waitFor(() => gw.gateway.agentCount === 0);
    const res = await get(gw.httpPort, 'left.localhost');
    expect(res.status).toBe(503);
    await gw.stop();
    gw.dir.remove();
  });
});
