/**
 * TLS terminated at the agent (ExposedService `termination: Agent`, issue 16 mode 3): the gateway
 * passes the handshake through by SNI, the agent answers with the certificate in its files and
 * relays the plaintext to the backend. Shown: no certificate yet → the client's handshake fails
 * and nothing reaches the backend; an ACME TLS-ALPN-01 validation (`acme-tls/1`) gets the
 * challenge certificate and nothing else; the certificate issued later is loaded live and
 * verified by the client; a renewed one serves new handshakes while an open connection keeps
 * going; gRPC over ALPN h2 to an h2c backend; decrypted HTTP/1.1 with this hop's X-Forwarded-*
 * fields (keep-alive, bodies by length and chunked, a malformed request answered 400, an Upgrade
 * relayed raw); plain HTTP for the name is redirected to HTTPS; a client that stops
 * mid-handshake is cut at the agent's bound.
 */
import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { crypto as acmeCrypto } from 'acme-client';
import type { Agent } from '../../src/agent/agent.ts';
import { createCA, issueServerCertificate } from '../../src/pki/issue.ts';
import { get } from '../helpers/http-client.ts';
import {
  hours,
  startAgent,
  startGateway,
  TempDir,
  waitFor,
  type GatewayFixture,
  type LogCapture,
} from '../helpers/fixture.ts';

const NAME = 'end.localhost';
/** A gRPC server behind a route the agent terminates with ALPN h2 (backendProtocol: H2C). */
const GRPC = 'grpc-end.localhost';
/** An HTTP/1.1 app behind a route the agent terminates with backendProtocol: HTTP1. */
const WEB = 'web-end.localhost';
/** An app without WebSocket support that answers an Upgrade as a plain request and reads on. */
const PLAIN_WEB = 'plain-web-end.localhost';
const raw = (b: Buffer): Buffer => b;
const echoService = {
  echo: {
    path: '/webgw.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
} satisfies grpc.ServiceDefinition;

interface Outcome {
  ok: boolean;
  alpn?: string | false | null;
  peer?: X509Certificate;
  answer?: string;
  error?: string;
}

function handshake(port: number, options: { alpn?: string[]; ca?: string; send?: string }): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket: TLSSocket = tlsConnect({
      host: '127.0.0.1',
      port,
      servername: NAME,
      ...(options.alpn ? { ALPNProtocols: options.alpn } : {}),
      ...(options.ca ? { ca: options.ca } : { rejectUnauthorized: false }),
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ ok: false, error: 'timeout' });
    }, 5000);
    socket.once('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, error: err.message });
    });
    socket.once('secureConnect', () => {
      const outcome: Outcome = { ok: true, alpn: socket.alpnProtocol, peer: socket.getPeerX509Certificate() };
      if (!options.send) {
        socket.once('end', () => {
          clearTimeout(timer);
          socket.destroy();
          resolve(outcome);
        });
        socket.resume();
        return;
      }
      socket.write(options.send);
      socket.once('data', (d: Buffer) => {
        clearTimeout(timer);
        socket.destroy();
        resolve({ ...outcome, answer: d.toString() });
      });
    });
  });
}

describe('TLS terminated at the agent', () => {
  const dir = new TempDir();
  const files = {
    certFile: join(dir.path, 'tls.crt'),
    keyFile: join(dir.path, 'tls.key'),
    challengeFile: join(dir.path, 'tls.challenge'),
  };
  const ca = createCA('tenant CA', hours(2));
  const received: string[] = [];
  const backend = createNetServer((s: Socket) => {
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      received.push(d.toString());
      s.write(`plain:${d.toString()}`);
    });
  });
  let gw: GatewayFixture;
  let agent: Agent;
  let log: LogCapture;
  const grpcServer = new grpc.Server();
  const webSeen: Array<{ method: string; headers: Record<string, unknown>; sha256: string; size: number }> = [];
  const serveWeb = (req: IncomingMessage, res: ServerResponse): void => {
    const hash = createHash('sha256');
    let size = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      size += c.length;
    });
    req.on('end', () => {
      const seen = { method: req.method ?? '', headers: req.headers, sha256: hash.digest('hex'), size };
      webSeen.push(seen);
      res.end(JSON.stringify(seen));
    });
  };
  const web = createHttpServer(serveWeb);
  /** Request heads the keep-reading app received. */
  const plainHeads: string[] = [];
  const plainWeb = createNetServer((s: Socket) => {
    s.on('error', () => {});
    let pending = '';
    s.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        plainHeads.push(pending.slice(0, end));
        pending = pending.slice(end + 4);
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
  });
  web.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Seen-Proto: ${String(req.headers['x-forwarded-proto'])}\r\n\r\n`,
    );
    if (head.length > 0) socket.write(head);
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.on('error', () => {});
  });
  const webFiles = {
    certFile: join(dir.path, 'web.crt'),
    keyFile: join(dir.path, 'web.key'),
    challengeFile: join(dir.path, 'web.challenge'),
    alpn: ['http/1.1'],
    forwardedHeaders: true,
  };
  const plainWebFiles = {
    ...webFiles,
    certFile: join(dir.path, 'plain-web.crt'),
    keyFile: join(dir.path, 'plain-web.key'),
    challengeFile: join(dir.path, 'plain-web.challenge'),
  };
  const grpcFiles = {
    certFile: join(dir.path, 'grpc.crt'),
    keyFile: join(dir.path, 'grpc.key'),
    challengeFile: join(dir.path, 'grpc.challenge'),
    alpn: ['h2'],
  };

  beforeAll(async () => {
    backend.listen(0, '127.0.0.1');
    await once(backend, 'listening');
    grpcServer.addService(echoService, {
      echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) =>
        done(null, Buffer.from(`echo:${call.request.toString()}`)),
    });
    const grpcPort = await new Promise<number>((resolve, reject) => {
      grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      );
    });
    web.listen(0, '127.0.0.1');
    plainWeb.listen(0, '127.0.0.1');
    await Promise.all([once(web, 'listening'), once(plainWeb, 'listening')]);
    const webCert = issueServerCertificate(ca, [WEB, PLAIN_WEB], hours(1));
    for (const f of [webFiles, plainWebFiles]) {
      writeFileSync(f.certFile, webCert.certPem);
      writeFileSync(f.keyFile, webCert.keyPem);
    }
    const grpcCert = issueServerCertificate(ca, [GRPC], hours(1));
    writeFileSync(grpcFiles.certFile, grpcCert.certPem);
    writeFileSync(grpcFiles.keyFile, grpcCert.keyPem);
    gw = await startGateway({ limits: { clientHelloTimeoutMs: 2000 } });
    const creds = await gw.issueAgent('end', { tls: [NAME, GRPC, WEB, PLAIN_WEB] });
    ({ agent, log } = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: creds }],
      [
        {
          protocol: 'tls',
          hostname: NAME,
          backend: `127.0.0.1:${(backend.address() as AddressInfo).port}`,
          terminate: files,
        },
        { protocol: 'tls', hostname: GRPC, backend: `127.0.0.1:${grpcPort}`, terminate: grpcFiles },
        {
          protocol: 'tls',
          hostname: WEB,
          backend: `127.0.0.1:${(web.address() as AddressInfo).port}`,
          terminate: webFiles,
        },
        {
          protocol: 'tls',
          hostname: PLAIN_WEB,
          backend: `127.0.0.1:${(plainWeb.address() as AddressInfo).port}`,
          terminate: plainWebFiles,
        },
      ],
      { limits: { handshakeTimeoutMs: 500 } },
    ));
    await waitFor(() => agent.connectedSessions === 1, 10_000, 'the tunnel');
  });

  afterAll(async () => {
    grpcServer.forceShutdown();
    web.close();
    plainWeb.close();
    await agent?.close(1000);
    await gw?.stop();
    backend.close();
    gw?.dir.remove();
    dir.remove();
  });

  it('refuses handshakes while it holds no certificate, and nothing reaches the backend', async () => {
    const outcome = await handshake(gw.tlsPort, { send: 'early' });
    expect(outcome.ok).toBe(false);
    expect(received).toEqual([]);
  });

  it('answers an acme-tls/1 validation with the challenge certificate, and only that', async () => {
    const keyAuthorization = 'token-1.thumbprint';
    const [key, cert] = await acmeCrypto.createAlpnCertificate(
      { identifier: { type: 'dns', value: NAME } } as never,
      keyAuthorization,
    );
    writeFileSync(files.challengeFile, `${key.toString()}${cert.toString()}`);
    await waitFor(
      () => log.lines.some((l) => l.msg === 'ACME TLS-ALPN-01 challenge loaded' && l.hostname === NAME),
      5000,
      'the challenge loaded',
    );
    const validation = await handshake(gw.tlsPort, { alpn: ['acme-tls/1'] });
    expect(validation).toMatchObject({ ok: true, alpn: 'acme-tls/1' });
    expect(acmeCrypto.isAlpnCertificateAuthorizationValid(validation.peer!.toString(), keyAuthorization)).toBe(true);
    // A client is not served the challenge certificate, and there is no certificate yet.
    expect((await handshake(gw.tlsPort, { alpn: ['h2', 'http/1.1'], send: 'x' })).ok).toBe(false);
    expect(received).toEqual([]);
  });

  it('serves the certificate once it lands, verified by the client, and relays the plaintext', async () => {
    const first = issueServerCertificate(ca, [NAME], hours(1));
    writeFileSync(files.keyFile, first.keyPem);
    writeFileSync(files.certFile, first.certPem);
    rmSync(files.challengeFile);
    await waitFor(
      () => log.lines.some((l) => l.msg === 'TLS certificate loaded; terminating this route' && l.hostname === NAME),
      5000,
      'the certificate loaded',
    );
    const served = await handshake(gw.tlsPort, { ca: ca.certPem, alpn: ['h2', 'http/1.1'], send: 'ping' });
    expect(served.error).toBeUndefined(); // says why when it fails
    expect(served).toMatchObject({ ok: true, answer: 'plain:ping', alpn: false });
    expect(served.peer!.serialNumber).toBe(new X509Certificate(first.certPem).serialNumber);
    expect(received).toEqual(['ping']);
    // The challenge was withdrawn: a validation now fails.
    await waitFor(
      async () => !(await handshake(gw.tlsPort, { alpn: ['acme-tls/1'] })).ok,
      5000,
      'the challenge withdrawn',
    );
  });

  it('serves a renewed certificate to new handshakes while an open connection keeps going', async () => {
    const open = tlsConnect({ host: '127.0.0.1', port: gw.tlsPort, servername: NAME, ca: ca.certPem });
    await once(open, 'secureConnect');
    const oldSerial = open.getPeerX509Certificate()!.serialNumber;
    const renewed = issueServerCertificate(ca, [NAME], hours(2));
    writeFileSync(files.keyFile, renewed.keyPem);
    writeFileSync(files.certFile, renewed.certPem);
    const newSerial = new X509Certificate(renewed.certPem).serialNumber;
    await waitFor(
      async () => (await handshake(gw.tlsPort, { ca: ca.certPem, send: 'n' })).peer?.serialNumber === newSerial,
      5000,
      'the renewed certificate',
    );
    open.write('still');
    const [answer] = (await once(open, 'data')) as [Buffer];
    expect(answer.toString()).toBe('plain:still');
    expect(oldSerial).not.toBe(newSerial);
    open.destroy();
  });

  it('keeps the previous certificate when the new files are not a pair', async () => {
    const other = issueServerCertificate(ca, [NAME], hours(1));
    const before = (await handshake(gw.tlsPort, { ca: ca.certPem, send: 'a' })).peer!.serialNumber;
    writeFileSync(files.certFile, other.certPem); // the key stays the old one
    await waitFor(
      () => log.lines.some((l) => l.msg === 'cannot load the TLS certificate; keeping the previous one'),
      5000,
      'the mismatch noticed',
    );
    expect((await handshake(gw.tlsPort, { ca: ca.certPem, send: 'b' })).peer!.serialNumber).toBe(before);
  });

  it('serves gRPC end to end: ALPN h2 at the agent, the decrypted HTTP/2 to an h2c backend', async () => {
    const Client = grpc.makeGenericClientConstructor(echoService, 'Echo');
    const client = new Client(`127.0.0.1:${gw.tlsPort}`, grpc.credentials.createSsl(Buffer.from(ca.certPem)), {
      'grpc.ssl_target_name_override': GRPC,
      'grpc.default_authority': GRPC,
    }) as unknown as grpc.Client & {
      echo: (req: Buffer, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply: Buffer) => void) => void;
    };
    try {
      const replies = await Promise.all(
        ['a', 'b', 'c'].map(
          (m) =>
            new Promise<string>((resolve, reject) => {
              client.echo(Buffer.from(m), { deadline: Date.now() + 5000 }, (err, reply) =>
                err ? reject(err) : resolve(reply.toString()),
              );
            }),
        ),
      );
      expect(replies).toEqual(['echo:a', 'echo:b', 'echo:c']);
    } finally {
      client.close();
    }
    // The HTTP/1.1-only route offers no h2: ALPN is what the route says its backend speaks.
    expect((await handshake(gw.tlsPort, { ca: ca.certPem, alpn: ['h2'], send: 'p' })).alpn).toBe(false);
  });

  it('gives decrypted HTTP/1.1 the X-Forwarded fields of this hop, over keep-alive, with bodies intact', async () => {
    const keepAlive = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: ca.certPem, servername: WEB });
    const send = (method: string, body?: Buffer, chunked = false) =>
      new Promise<{ status: number; seen: (typeof webSeen)[number] }>((resolve, reject) => {
        const req = httpsRequest(
          {
            host: '127.0.0.1',
            port: gw.tlsPort,
            method,
            path: '/x',
            agent: keepAlive,
            headers: {
              host: WEB,
              'x-forwarded-proto': 'http',
              'x-forwarded-for': '203.0.113.9',
              'x-forwarded-host': 'evil.example',
              ...(body && !chunked ? { 'content-length': String(body.length) } : {}),
            },
          },
          (res) => {
            let text = '';
            res
              .setEncoding('utf8')
              .on('data', (d: string) => {
                text += d;
              })
              .on('end', () => resolve({ status: res.statusCode ?? 0, seen: JSON.parse(text) }));
          },
        );
        req.on('error', reject);
        if (body && chunked) {
          req.write(body.subarray(0, 1000));
          req.write(body.subarray(1000));
        }
        req.end(body && !chunked ? body : undefined);
      });
    const big = randomBytes(1024 * 1024);
    const answers = [await send('GET'), await send('POST', big), await send('PUT', big, true)];
    keepAlive.destroy();
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.seen.headers).toMatchObject({
        'x-forwarded-proto': 'https',
        'x-forwarded-for': '203.0.113.9, 127.0.0.1',
        'x-forwarded-host': WEB,
        'x-forwarded-port': String(gw.tlsPort),
      });
    }
    const sha = createHash('sha256').update(big).digest('hex');
    expect(answers.slice(1).map((a) => [a.seen.size, a.seen.sha256])).toEqual([
      [big.length, sha],
      [big.length, sha],
    ]);
    expect(answers[2]!.seen.headers['transfer-encoding']).toBe('chunked');
  });

  it('answers a malformed request with 400 and the backend never sees it; an Upgrade becomes a raw relay', async () => {
    const before = webSeen.length;
    const bad = tlsConnect({ host: '127.0.0.1', port: gw.tlsPort, servername: WEB, ca: ca.certPem });
    await once(bad, 'secureConnect');
    bad.write('GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello');
    let answer = '';
    bad.setEncoding('utf8').on('data', (d: string) => {
      answer += d;
    });
    await once(bad, 'end');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(webSeen.length).toBe(before);
    bad.destroy();

    const up = tlsConnect({ host: '127.0.0.1', port: gw.tlsPort, servername: WEB, ca: ca.certPem });
    await once(up, 'secureConnect');
    up.write(`GET /ws HTTP/1.1\r\nHost: ${WEB}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly`);
    let got = '';
    up.setEncoding('utf8').on('data', (d: string) => {
      got += d;
    });
    await waitFor(() => got.includes('early'), 5000, 'the 101 and the early bytes echoed');
    expect(got).toMatch(/^HTTP\/1\.1 101 /);
    expect(got).toContain('X-Seen-Proto: https');
    up.write('later');
    await waitFor(() => got.endsWith('later'), 5000, 'raw bytes after the upgrade');
    up.destroy();
  });

  it('relays nothing unparsed after a declined Upgrade, so a forged X-Forwarded-For cannot follow it', async () => {
    const sock = tlsConnect({ host: '127.0.0.1', port: gw.tlsPort, servername: PLAIN_WEB, ca: ca.certPem });
    await once(sock, 'secureConnect');
    let got = '';
    sock.setEncoding('utf8').on('data', (d: string) => {
      got += d;
    });
    // The app has no WebSocket: it answers the Upgrade as a request and would read on.
    sock.write(
      `GET /ws HTTP/1.1\r\nHost: ${PLAIN_WEB}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /forged HTTP/1.1\r\nHost: ${PLAIN_WEB}\r\nX-Forwarded-For: 10.6.6.6\r\n\r\n`,
    );
    await once(sock, 'end');
    expect(got).toMatch(/^HTTP\/1\.1 200 /);
    expect(plainHeads).toHaveLength(1);
    expect(plainHeads[0]).toContain('X-Forwarded-For: 127.0.0.1');
    expect(plainHeads.join('\n')).not.toContain('10.6.6.6');
    sock.destroy();
  });

  it('redirects plain HTTP for the name to HTTPS', async () => {
    const answer = await get(gw.httpPort, NAME, '/pay?x=1');
    expect(answer.status).toBe(308);
    expect(answer.headers.location).toBe(`https://${NAME}:${gw.tlsPort}/pay?x=1`);
    expect((await get(gw.httpPort, 'nobody.localhost', '/')).status).toBe(404);
  });

  it("cuts a client that stops after its ClientHello at the agent's handshake bound", async () => {
    // A real ClientHello through the gateway (which routes by it), then silence.
    const raw = netConnect({ host: '127.0.0.1', port: gw.tlsPort });
    const hello = await new Promise<Buffer>((resolve) => {
      const capture = createNetServer((s) =>
        s.once('data', (d: Buffer) => {
          resolve(d);
          s.destroy();
          capture.close();
        }),
      );
      capture.listen(0, '127.0.0.1', () => {
        const c = tlsConnect({ host: '127.0.0.1', port: (capture.address() as AddressInfo).port, servername: NAME });
        c.on('error', () => {});
      });
    });
    raw.write(hello);
    const started = Date.now();
    raw.resume();
    raw.on('error', () => {});
    await once(raw, 'close');
    // The client's own handshake never completes: the agent's 500 ms bound, not the gateway's.
    expect(Date.now() - started).toBeLessThan(1500);
  });
});
