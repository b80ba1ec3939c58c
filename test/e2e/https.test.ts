/**
 * HTTPS terminated at the gateway (issue 16): a farmer's wildcard certificate in the gateway's
 * certificatesDir serves https grants; plain HTTP is redirected unless the name has an http
 * grant too; tls-terminated relays the plaintext; a renewed certificate reaches new handshakes
 * without dropping open connections; bad certificates and bad handshakes cost nothing else.
 * Clients verify the served chain against the issuing CA (node https `ca`, openssl s_client).
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { WebSocket, WebSocketServer, type ClientOptions } from 'ws';
import { writeKeyPair } from '../../src/pki/files.ts';
import { createCA, issueServerCertificate } from '../../src/pki/issue.ts';
import { hours, startAgent, startGateway, TempDir, waitFor, type GatewayFixture } from '../helpers/fixture.ts';
import { get, rawExchange, startHttpBackend } from '../helpers/http-client.ts';
import type { Agent } from '../../src/agent/agent.ts';

const run = promisify(execFile);

interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  serial: string;
}

describe('HTTPS terminated at the gateway', () => {
  // The farmer's public CA (Let's Encrypt's part here) and its wildcard for the gateway domain.
  const publicCa = createCA('public CA', hours(24));
  const certs = new TempDir();
  const caFile = certs.file('public-ca.crt');
  const certDir = certs.file('served');
  let gw: GatewayFixture;
  let agent: Agent;
  let backendServer: { close(): void };
  let rawBackend: ReturnType<typeof createNetServer>;

  function request(name: string, path: string, opts: { host?: string; agent?: HttpsAgent } = {}): Promise<HttpsAnswer> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: gw.tlsPort,
          path,
          servername: name,
          ca: publicCa.certPem,
          headers: { host: opts.host ?? name },
          agent: opts.agent ?? false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          // Read now: a kept-alive socket is detached from the response once it ended.
          const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber ?? '';
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString(),
              serial,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  beforeAll(async () => {
    mkdirSync(certDir);
    writeFileSync(caFile, publicCa.certPem);
    await writeKeyPair(certDir, 'domain', issueServerCertificate(publicCa, ['*.gw.localhost'], hours(24)));
    // Skipped, and logged: a key of another certificate, and an expired certificate.
    const other = issueServerCertificate(publicCa, ['mismatch.localhost'], hours(24));
    writeFileSync(`${certDir}/mismatch.crt`, other.certPem);
    writeFileSync(`${certDir}/mismatch.key`, issueServerCertificate(publicCa, ['x.localhost'], hours(24)).keyPem);
    await writeKeyPair(
      certDir,
      'expired',
      issueServerCertificate(publicCa, ['expired.localhost'], {
        notBefore: new Date(Date.now() - 7200_000),
        notAfter: new Date(Date.now() - 3600_000),
      }),
    );

    const backend = await startHttpBackend((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          host: req.headers.host,
          url: req.url,
          proto: req.headers['x-forwarded-proto'],
          port: req.headers['x-forwarded-port'],
          for: req.headers['x-forwarded-for'],
        }),
      );
    });
    backendServer = backend.server;
    const wss = new WebSocketServer({ server: backend.server });
    wss.on('connection', (ws, req) => ws.send(`proto=${String(req.headers['x-forwarded-proto'])}`));
    rawBackend = createNetServer((s) => {
      s.on('error', () => {});
      s.on('data', (c: Buffer) => s.write(`plain:${c.toString()}`));
    });
    rawBackend.listen(0, '127.0.0.1');
    await once(rawBackend, 'listening');
    const rawPort = (rawBackend.address() as AddressInfo).port;

    gw = await startGateway({ certificatesDir: certDir, limits: { clientHelloTimeoutMs: 500 } });
    const credentials = await gw.issueAgent('web', {
      https: ['web.gw.localhost', 'both.gw.localhost', 'nocert.localhost'],
      http: ['both.gw.localhost'],
      tlsTerminated: ['raw.gw.localhost'],
    });
    const backendAddress = `127.0.0.1:${backend.port}`;
    ({ agent } = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials }],
      [
        { protocol: 'http', hostname: 'web.gw.localhost', backend: backendAddress },
        { protocol: 'http', hostname: 'both.gw.localhost', backend: backendAddress },
        { protocol: 'http', hostname: 'nocert.localhost', backend: backendAddress },
        { protocol: 'tls', hostname: 'raw.gw.localhost', backend: `127.0.0.1:${rawPort}` },
      ],
    ));
    await waitFor(() => gw.gateway.agentCount === 1, 10_000, 'agent connected');
  });

  afterAll(async () => {
    await agent?.close(1000);
    await gw?.stop();
    backendServer?.close();
    rawBackend?.close();
    certs.remove();
  });

  it('serves https with the farmer certificate, the backend told the scheme and port', async () => {
    const res = await request('web.gw.localhost', '/hello?x=1');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({
      host: 'web.gw.localhost',
      url: '/hello?x=1',
      proto: 'https',
      port: String(gw.tlsPort),
      for: '127.0.0.1',
    });
  });

  it('passes openssl s_client -verify_return_error against the issuing CA', async () => {
    const { stdout } = await run('sh', [
      '-c',
      `echo | openssl s_client -connect 127.0.0.1:${gw.tlsPort} -servername web.gw.localhost -verify_hostname web.gw.localhost -CAfile ${caFile} -verify_return_error -alpn http/1.1 2>&1`,
    ]);
    expect(stdout).toMatch(/Verify return code: 0 \(ok\)/);
    expect(stdout).toMatch(/ALPN protocol: http\/1\.1/);
  });

  it('redirects plain HTTP to HTTPS (308, same target) unless the name is granted http too', async () => {
    const redirected = await get(gw.httpPort, 'web.gw.localhost', '/a/b?c=d');
    expect(redirected.status).toBe(308);
    expect(redirected.headers.location).toBe(`https://web.gw.localhost:${gw.tlsPort}/a/b?c=d`);
    const plain = await get(gw.httpPort, 'both.gw.localhost', '/p');
    expect(plain.status).toBe(200);
    expect(JSON.parse(plain.body).proto).toBe('http');
    expect((await request('both.gw.localhost', '/s')).status).toBe(200);
    // An absolute-form target keeps only its path.
    const raw = await rawExchange(
      gw.httpPort,
      'GET http://web.gw.localhost/abs HTTP/1.1\r\nHost: web.gw.localhost\r\nConnection: close\r\n\r\n',
    );
    expect(raw.text).toContain(`Location: https://web.gw.localhost:${gw.tlsPort}/abs\r\n`);
  });

  it('answers 421 to a Host the connection certificate does not name', async () => {
    const res = await request('web.gw.localhost', '/', { host: 'nocert.localhost' });
    expect(res.status).toBe(421);
    expect(res.headers['x-webgw-error']).toBe('421');
  });

  it('refuses the handshake for an https name without a certificate, and unknown SNI', async () => {
    for (const name of ['nocert.localhost', 'unknown.gw.localhost']) {
      const error = await new Promise<Error>((resolve) => {
        const s = tlsConnect({ host: '127.0.0.1', port: gw.tlsPort, servername: name, ca: publicCa.certPem }, () =>
          resolve(new Error('connected')),
        );
        s.on('error', resolve);
      });
      expect(error.message).toMatch(/unrecognized name|alert number 112/i);
    }
  });

  it('relays the plaintext of a tls-terminated route', async () => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: gw.tlsPort,
      servername: 'raw.gw.localhost',
      ca: publicCa.certPem,
    });
    await once(socket, 'secureConnect');
    socket.write('ping');
    const [data] = (await once(socket, 'data')) as [Buffer];
    expect(data.toString()).toBe('plain:ping');
    socket.destroy();
  });

  it('carries WebSocket over wss', async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${gw.tlsPort}/ws`, {
      ca: publicCa.certPem,
      servername: 'web.gw.localhost',
      headers: { host: 'web.gw.localhost' },
    } as ClientOptions);
    const [message] = (await once(ws, 'message')) as [Buffer];
    expect(message.toString()).toBe('proto=https');
    ws.close();
  });

  it('serves a renewed certificate to new handshakes and keeps open connections', async () => {
    const keepAlive = new HttpsAgent({ keepAlive: true, maxSockets: 1 });
    const before = await request('web.gw.localhost', '/1', { agent: keepAlive });
    await writeKeyPair(certDir, 'domain', issueServerCertificate(publicCa, ['*.gw.localhost'], hours(48)));
    await waitFor(
      async () => (await request('web.gw.localhost', '/new')).serial !== before.serial,
      15_000,
      'renewed certificate served',
    );
    // The connection opened before the renewal still serves, with the certificate it got.
    const again = await request('web.gw.localhost', '/2', { agent: keepAlive });
    expect(again.status).toBe(200);
    expect(again.serial).toBe(before.serial);
    keepAlive.destroy();
    expect(
      gw.log.lines
        .filter((l) => l.msg === 'certificate skipped')
        .map((l) => l.name)
        .sort(),
    ).toEqual(expect.arrayContaining(['expired', 'mismatch']));
  });

  it('closes a handshake that stalls after the ClientHello, and survives garbage after it', async () => {
    // A real ClientHello, then nothing: the handshake timeout (500 ms) ends it.
    const hello = await captureClientHello('web.gw.localhost');
    const stalled = await rawExchange(gw.tlsPort, hello, 5000);
    expect(stalled.closed).toBe(true);
    expect(stalled.elapsedMs).toBeLessThan(3000);
    const garbage = await rawExchange(gw.tlsPort, Buffer.concat([hello, Buffer.alloc(4096, 0x41)]), 5000);
    expect(garbage.closed).toBe(true);
    expect((await request('web.gw.localhost', '/still')).status).toBe(200);
  });
});

/** The bytes a TLS client sends first, for `servername`. */
async function captureClientHello(servername: string): Promise<Buffer> {
  const server = createNetServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const got = new Promise<Buffer>((resolve) =>
    server.once('connection', (s) =>
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
      }),
    ),
  );
  const client = tlsConnect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
  client.on('error', () => {});
  const hello = await got;
  client.destroy();
  server.close();
  return hello;
}
