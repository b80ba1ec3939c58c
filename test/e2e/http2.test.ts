/**
 * HTTP/2 to clients and gRPC end to end (issue 16): an HTTPS route negotiates h2 (ALPN), its
 * requests reach an HTTP/1.1 backend translated, or an h2c backend (grant h2c) as HTTP/2 with
 * trailers; a gRPC server behind the tunnel is called by @grpc/grpc-js through the gateway
 * (unary, streams both ways, errors, deadlines). Checked with node's http2 client, curl --http2
 * and grpc-js, each verifying the chain against the issuing CA.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import {
  connect as http2Connect,
  createServer as createH2cServer,
  type ClientHttp2Session,
  type IncomingHttpHeaders,
  type Http2Server,
  type OutgoingHttpHeaders,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { writeKeyPair } from '../../src/pki/files.ts';
import { createCA, issueServerCertificate } from '../../src/pki/issue.ts';
import type { Agent } from '../../src/agent/agent.ts';
import { hours, startAgent, startGateway, TempDir, waitFor, type GatewayFixture } from '../helpers/fixture.ts';
import { get, startHttpBackend } from '../helpers/http-client.ts';

const run = promisify(execFile);

interface H2Answer {
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders | undefined;
  body: Buffer;
}

/** One request on `session`; resolves with the whole answer. */
function h2Request(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  body?: Buffer | Buffer[],
): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    let answer: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      answer = h;
    });
    req.on('trailers', (t) => {
      trailers = t;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ headers: answer, trailers, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    if (Array.isArray(body)) {
      for (const part of body) req.write(part);
      req.end();
    } else if (body) {
      req.end(body);
    }
  });
}

/** An HTTP/2 frame (RFC 9113 §4.1). */
function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

function framesOf(data: Buffer): Array<{ type: number; stream: number }> {
  const out: Array<{ type: number; stream: number }> = [];
  for (let o = 0; o + 9 <= data.length; o += 9 + data.readUIntBE(o, 3))
    out.push({ type: data.readUInt8(o + 3), stream: data.readUInt32BE(o + 5) });
  return out;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const raw = (b: Buffer): Buffer => b;
const method = (path: string, requestStream: boolean, responseStream: boolean) => ({
  path,
  requestStream,
  responseStream,
  requestSerialize: raw,
  requestDeserialize: raw,
  responseSerialize: raw,
  responseDeserialize: raw,
});
/** A gRPC service on raw bytes (no .proto needed): what grpc-js does with any codec. */
const echoService = {
  echo: method('/webgw.test.Echo/Echo', false, false),
  count: method('/webgw.test.Echo/Count', false, true),
  chat: method('/webgw.test.Echo/Chat', true, true),
  sum: method('/webgw.test.Echo/Sum', true, false),
  slow: method('/webgw.test.Echo/Slow', false, false),
} satisfies grpc.ServiceDefinition;
type EchoClient = grpc.Client & Record<keyof typeof echoService, (...args: unknown[]) => unknown>;

describe('HTTP/2 and gRPC through the gateway', () => {
  const publicCa = createCA('public CA', hours(24));
  const certs = new TempDir();
  const caFile = certs.file('public-ca.crt');
  const certDir = certs.file('served');
  let gw: GatewayFixture;
  let agent: Agent;
  let http1: { close(): void };
  let h2c: Http2Server;
  let grpcServer: grpc.Server;
  let session: ClientHttp2Session;
  let client: EchoClient;
  let backendRequests = 0;

  const connect = (name: string): ClientHttp2Session =>
    http2Connect(`https://${name}:${gw.tlsPort}`, {
      ca: publicCa.certPem,
      servername: name,
      // Every name is this gateway: resolve to loopback (*.localhost need not resolve here).
      lookup: (_host, opts, done) => {
        const answer = done as (
          err: null,
          address: string | Array<{ address: string; family: number }>,
          family?: number,
        ) => void;
        if ((opts as { all?: boolean }).all) answer(null, [{ address: '127.0.0.1', family: 4 }]);
        else answer(null, '127.0.0.1', 4);
      },
    });

  beforeAll(async () => {
    mkdirSync(certDir);
    await writeKeyPair(certs.path, 'public-ca', publicCa);
    await writeKeyPair(certDir, 'domain', issueServerCertificate(publicCa, ['*.gw.localhost'], hours(24)));

    const backend = await startHttpBackend((req, res) => {
      backendRequests += 1;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        res.setHeader('content-type', 'application/json');
        res.setHeader('set-cookie', ['a=1', 'b=2']);
        res.end(
          JSON.stringify({
            version: req.httpVersion,
            method: req.method,
            host: req.headers.host,
            url: req.url,
            proto: req.headers['x-forwarded-proto'],
            for: req.headers['x-forwarded-for'],
            cookie: req.headers.cookie,
            te: req.headers['transfer-encoding'] ?? null,
            length: body.length,
            sha: sha256(body),
          }),
        );
      });
    });
    http1 = backend.server;

    h2c = createH2cServer();
    h2c.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const body = Buffer.concat(chunks);
        stream.respond(
          { ':status': 200, 'content-type': 'application/json', 'x-backend': 'h2c' },
          { waitForTrailers: true },
        );
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': sha256(body) }));
        stream.end(
          JSON.stringify({
            path: headers[':path'],
            authority: headers[':authority'],
            proto: headers['x-forwarded-proto'],
            te: headers.te ?? null,
            length: body.length,
          }),
        );
      });
    });
    h2c.listen(0, '127.0.0.1');
    await new Promise((resolve) => h2c.once('listening', resolve));

    grpcServer = new grpc.Server();
    grpcServer.addService(echoService, {
      echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
        if (call.request.toString() === 'missing') done({ code: grpc.status.NOT_FOUND, details: 'no such thing' });
        else done(null, Buffer.concat([Buffer.from('echo:'), call.request]));
      },
      count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        const n = Number(call.request.toString());
        for (let i = 0; i < n; i++) call.write(Buffer.from(String(i)));
        call.end();
      },
      chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        call.on('data', (m: Buffer) => call.write(Buffer.from(m.toString().toUpperCase())));
        call.on('end', () => call.end());
      },
      sum: (call: grpc.ServerReadableStream<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
        let total = 0;
        call.on('data', (m: Buffer) => {
          total += m.length;
        });
        call.on('end', () => done(null, Buffer.from(String(total))));
      },
      slow: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
        const timer = setTimeout(() => done(null, Buffer.from('late')), 2000);
        call.on('cancelled', () => clearTimeout(timer));
      },
    });
    const grpcPort = await new Promise<number>((resolve, reject) => {
      grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      );
    });

    gw = await startGateway({ certificatesDir: certDir });
    const credentials = await gw.issueAgent('web', {
      https: ['web.gw.localhost', 'h2c.gw.localhost', 'grpc.gw.localhost'],
      http: ['h2c.gw.localhost', 'grpc.gw.localhost'],
      h2c: ['h2c.gw.localhost', 'grpc.gw.localhost'],
    });
    ({ agent } = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials }],
      [
        { protocol: 'http', hostname: 'web.gw.localhost', backend: `127.0.0.1:${backend.port}` },
        { protocol: 'http', hostname: 'h2c.gw.localhost', backend: `127.0.0.1:${(h2c.address() as AddressInfo).port}` },
        { protocol: 'http', hostname: 'grpc.gw.localhost', backend: `127.0.0.1:${grpcPort}` },
      ],
    ));
    await waitFor(() => gw.gateway.agentCount === 1, 10_000, 'agent connected');
    session = connect('web.gw.localhost');
    const Client = grpc.makeGenericClientConstructor(echoService, 'Echo');
    client = new Client(`127.0.0.1:${gw.tlsPort}`, grpc.credentials.createSsl(Buffer.from(publicCa.certPem)), {
      'grpc.ssl_target_name_override': 'grpc.gw.localhost',
      'grpc.default_authority': 'grpc.gw.localhost',
    }) as unknown as EchoClient;
  });

  afterAll(async () => {
    client?.close();
    session?.close();
    await agent?.close(1000);
    await gw?.stop();
    http1?.close();
    h2c?.close();
    grpcServer?.forceShutdown();
    certs.remove();
  });

  it('negotiates h2 and serves an HTTP/1.1 backend, X-Forwarded-* set, cookies joined', async () => {
    const res = await h2Request(session, {
      ':path': '/hello?x=1',
      cookie: ['a=1', 'b=2'],
      'x-forwarded-proto': 'forged',
    });
    expect(session.alpnProtocol).toBe('h2');
    expect(res.headers[':status']).toBe(200);
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(res.headers.connection).toBeUndefined();
    expect(JSON.parse(res.body.toString())).toMatchObject({
      version: '1.1',
      method: 'GET',
      host: `web.gw.localhost:${gw.tlsPort}`,
      url: '/hello?x=1',
      proto: 'https',
      for: '127.0.0.1',
      cookie: 'a=1; b=2',
      length: 0,
    });
  });

  it('carries request bodies bit-exact, with and without a length, and 100 streams at once', async () => {
    const big = Buffer.from(Array.from({ length: 3 * 1024 * 1024 + 7 }, (_, i) => (i * 31) & 0xff));
    const sized = JSON.parse(
      (
        await h2Request(session, { ':method': 'POST', ':path': '/up', 'content-length': String(big.length) }, big)
      ).body.toString(),
    );
    expect(sized).toMatchObject({ length: big.length, sha: sha256(big), te: null });
    const parts = [big.subarray(0, 1000), big.subarray(1000)];
    const chunked = JSON.parse(
      (await h2Request(session, { ':method': 'POST', ':path': '/up' }, parts)).body.toString(),
    );
    expect(chunked).toMatchObject({ length: big.length, sha: sha256(big), te: 'chunked' });
    const many = await Promise.all(Array.from({ length: 100 }, (_, i) => h2Request(session, { ':path': `/n/${i}` })));
    expect(many.map((r) => JSON.parse(r.body.toString()).url)).toEqual(
      Array.from({ length: 100 }, (_, i) => `/n/${i}`),
    );
  });

  it('answers 421 for a name the connection was not opened for, 404 for one nobody serves', async () => {
    expect((await h2Request(session, { ':path': '/', ':authority': 'elsewhere.localhost' })).headers[':status']).toBe(
      421,
    );
    const res = await h2Request(session, { ':path': '/', ':authority': 'nobody.gw.localhost' });
    expect(res.headers[':status']).toBe(404);
    expect(res.body.toString()).toContain('no service is exposed as nobody.gw.localhost');
  });

  it('passes curl --http2 with the chain verified', async () => {
    const { stdout } = await run('curl', [
      '-sS',
      '--http2',
      '--cacert',
      caFile,
      '--resolve',
      `web.gw.localhost:${gw.tlsPort}:127.0.0.1`,
      '-w',
      '\n%{http_version} %{response_code}',
      `https://web.gw.localhost:${gw.tlsPort}/curl`,
    ]);
    const [body, status] = stdout.split('\n');
    expect(status).toBe('2 200');
    expect(JSON.parse(body ?? '')).toMatchObject({ url: '/curl', proto: 'https' });
  });

  it('speaks HTTP/2 to an h2c backend: trailers, te: trailers and bodies both ways', async () => {
    const h2 = connect('h2c.gw.localhost');
    try {
      const body = Buffer.alloc(200_000, 'q');
      const res = await h2Request(h2, { ':method': 'POST', ':path': '/grpc-like', te: 'trailers' }, body);
      expect(res.headers[':status']).toBe(200);
      expect(res.headers['x-backend']).toBe('h2c');
      expect(JSON.parse(res.body.toString())).toEqual({
        path: '/grpc-like',
        authority: `h2c.gw.localhost:${gw.tlsPort}`,
        proto: 'https',
        te: 'trailers',
        length: body.length,
      });
      expect(res.trailers?.['x-checksum']).toBe(sha256(body));
    } finally {
      h2.close();
    }
  });

  it('serves HTTP/1.1 clients of an h2c backend too', async () => {
    const res = await get(gw.httpPort, 'h2c.gw.localhost', '/from-h1');
    expect(res.status).toBe(200);
    expect(res.headers['x-backend']).toBe('h2c');
    expect(JSON.parse(res.body)).toMatchObject({ path: '/from-h1', authority: 'h2c.gw.localhost', proto: 'http' });
  });

  it('calls a gRPC server behind the tunnel: unary, streams both ways, status and deadlines', async () => {
    const unary = (name: 'echo' | 'slow', message: string, deadlineMs = 10_000) =>
      new Promise<Buffer>((resolve, reject) => {
        client[name](
          Buffer.from(message),
          { deadline: Date.now() + deadlineMs },
          (err: grpc.ServiceError | null, reply: Buffer) => (err ? reject(err) : resolve(reply)),
        );
      });
    expect((await unary('echo', 'hi')).toString()).toBe('echo:hi');
    await expect(unary('echo', 'missing')).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
      details: 'no such thing',
    });
    await expect(unary('slow', 'x', 300)).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });

    const counted: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = client.count(Buffer.from('500')) as grpc.ClientReadableStream<Buffer>;
      call.on('data', (m: Buffer) => counted.push(m.toString()));
      call.on('end', resolve);
      call.on('error', reject);
    });
    expect(counted).toEqual(Array.from({ length: 500 }, (_, i) => String(i)));

    const replies: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = client.chat() as grpc.ClientDuplexStream<Buffer, Buffer>;
      call.on('data', (m: Buffer) => replies.push(m.toString()));
      call.on('end', resolve);
      call.on('error', reject);
      for (const word of ['one', 'two', 'three']) call.write(Buffer.from(word));
      call.end();
    });
    expect(replies).toEqual(['ONE', 'TWO', 'THREE']);

    const total = await new Promise<string>((resolve, reject) => {
      const call = client.sum((err: grpc.ServiceError | null, reply: Buffer) =>
        err ? reject(err) : resolve(reply.toString()),
      ) as grpc.ClientWritableStream<Buffer>;
      for (let i = 0; i < 64; i++) call.write(Buffer.alloc(16 * 1024));
      call.end();
    });
    expect(total).toBe(String(64 * 16 * 1024));
  });

  it('closes a connection that opens and resets streams in a flood (rapid reset), and keeps serving', async () => {
    // Raw frames: node's client drops a stream closed before it was sent, so it cannot flood.
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: gw.tlsPort,
      servername: 'web.gw.localhost',
      ca: publicCa.certPem,
      ALPNProtocols: ['h2'],
    });
    await once(socket, 'secureConnect');
    expect(socket.alpnProtocol).toBe('h2');
    const received: Buffer[] = [];
    socket.on('data', (c: Buffer) => received.push(c));
    socket.on('error', () => {});
    const closed = once(socket, 'close');
    let ended = false;
    socket.once('end', () => {
      ended = true;
    });
    const before = backendRequests;
    socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0))]));
    // GET https://web.gw.localhost/ from the HPACK static table, the authority added to the dynamic one.
    const authority = Buffer.from('web.gw.localhost');
    const first = Buffer.concat([Buffer.from([0x82, 0x87, 0x84, 0x41, authority.length]), authority]);
    const next = Buffer.from([0x82, 0x87, 0x84, 0xbe]);
    const cancel = Buffer.from([0, 0, 0, 8]);
    let sent = 0;
    for (let burst = 0; burst < 20 && !ended && !socket.destroyed; burst++) {
      const frames: Buffer[] = [];
      for (let i = 0; i < 500; i++, sent++) {
        const id = 2 * sent + 1;
        frames.push(frame(1, 0x5, id, sent === 0 ? first : next), frame(3, 0, id, cancel));
      }
      socket.write(Buffer.concat(frames));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      closed,
      new Promise((resolve) => {
        timer = setTimeout(resolve, 5000);
      }),
    ]);
    clearTimeout(timer);
    const answer = Buffer.concat(received);
    // node:http2 (nghttp2's limit on reset streams) ends the connection with GOAWAY.
    expect(socket.destroyed).toBe(true);
    expect(framesOf(answer).some((f) => f.type === 7)).toBe(true);
    socket.destroy();
    // Most of the streams never reached a backend: a reset stream costs the gateway little.
    expect(backendRequests - before).toBeLessThan(sent / 2);
    const res = await h2Request(session, { ':path': '/after' });
    expect(res.headers[':status']).toBe(200);
  });

  it('refuses a request head over the limit, and serves the next connection', async () => {
    const big = connect('web.gw.localhost');
    big.on('error', () => {});
    const res = await h2Request(big, { ':path': '/big', 'x-big': 'v'.repeat(64 * 1024) }).catch((err: Error) => err);
    big.destroy();
    // nghttp2 refuses the stream (the head is over SETTINGS_MAX_HEADER_LIST_SIZE); the gateway goes on.
    expect(String(res)).toMatch(/NGHTTP2_REFUSED_STREAM/);
    const after = connect('web.gw.localhost');
    try {
      expect((await h2Request(after, { ':path': '/ok' })).headers[':status']).toBe(200);
    } finally {
      after.close();
    }
  });
});
