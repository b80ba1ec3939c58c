import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import { connect as netConnect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { WebSocket } from 'ws';
import { createCA, issueAgentCertificate } from '../../src/pki/issue.ts';
import { writeKeyPair } from '../../src/pki/files.ts';
import { encodeFrame, FrameType } from '../../src/tunnel/frame.ts';
import { get, startHttpBackend } from '../helpers/http-client.ts';
import { hours, startAgent, startGateway, waitFor, type GatewayFixture } from '../helpers/fixture.ts';
import type { Agent } from '../../src/agent/agent.ts';

describe('trust: certificates and grants', () => {
  let gw: GatewayFixture;
  let backend: Server;
  let backendPort: number;
  let agent: Agent;

  beforeAll(async () => {
    ({ server: backend, port: backendPort } = await startHttpBackend());
    gw = await startGateway({ tcpRange: { from: 40000, to: 40010 } });
    const creds = await gw.issueAgent('granted', { http: ['mine.localhost'], tcp: [40001, 50001] });
    // The agent is configured for more than its certificate grants.
    ({ agent } = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: creds }],
      [
        { protocol: 'http', hostname: 'mine.localhost', backend: `127.0.0.1:${backendPort}` },
        { protocol: 'http', hostname: 'theirs.localhost', backend: `127.0.0.1:${backendPort}` },
      ],
    ));
    await waitFor(() => gw.gateway.agentCount === 1);
  });

  afterAll(async () => {
    await agent.close(1000);
    await gw.stop();
    backend.close();
    gw.dir.remove();
  });

  it('serves a granted hostname', async () => {
    expect((await get(gw.httpPort, 'mine.localhost')).body).toBe('served mine.localhost');
  });

  it('does not route a hostname outside the certificate, whatever the agent config says', async () => {
    expect((await get(gw.httpPort, 'theirs.localhost')).status).toBe(404);
  });

  it('opens only granted ports inside the gateway range', async () => {
    expect(gw.gateway.tcpPorts).toEqual([40001]);
    expect(gw.log.find(/ignoring TCP grants outside/)).toMatchObject({ ports: [50001] });
  });

  async function dialWith(files: { caFile: string; certFile?: string; keyFile?: string }): Promise<string> {
    const ws = new WebSocket(`${gw.tunnelUrl}/v1/tunnel`, {
      ca: readFileSync(files.caFile),
      ...(files.certFile ? { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile!) } : {}),
    });
    const outcome = await new Promise<string>((resolve) => {
      ws.once('open', () => resolve('open'));
      ws.once('error', (e) => resolve(`error: ${e.message}`));
    });
    ws.terminate();
    return outcome;
  }

  it('refuses an expired certificate at the handshake, with a clear log line', async () => {
    const files = await gw.issueAgent(
      'expired',
      { http: ['mine.localhost'] },
      { notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) },
    );
    expect(await dialWith(files)).toMatch(/^error/);
    await waitFor(
      () => gw.log.lines.some((l) => l.msg === 'agent refused at TLS handshake' && l.reason === 'expired'),
      2000,
      'log line',
    );
  });

  it('refuses a certificate from another CA at the handshake', async () => {
    const other = createCA('someone else', hours(1));
    const pair = issueAgentCertificate(
      other,
      { http: ['mine.localhost'], https: [], tls: [], tlsTerminated: [], h2c: [], tcp: [], identity: 'x' },
      hours(1),
    );
    const { certFile, keyFile } = await writeKeyPair(gw.dir.path, 'foreign', pair);
    expect(await dialWith({ caFile: gw.dir.file('ca.crt'), certFile, keyFile })).toMatch(/^error/);
    await waitFor(
      () => gw.log.lines.some((l) => l.msg === 'agent refused at TLS handshake' && l.reason === 'untrusted'),
      2000,
      'log line',
    );
  });

  it('refuses a client without a certificate at the handshake', async () => {
    expect(await dialWith({ caFile: gw.dir.file('ca.crt') })).toMatch(/^error/);
    await waitFor(
      () => gw.log.lines.some((l) => l.msg === 'agent refused at TLS handshake' && l.reason === 'no-certificate'),
      2000,
      'log line',
    );
  });

  it('an agent does not accept a gateway whose certificate another CA signed', async () => {
    const impostor = await startGateway();
    const creds = await gw.issueAgent('pinned', { http: ['mine.localhost'] });
    const { agent: pinned, log } = await startAgent(
      [{ endpoints: [impostor.tunnelUrl], credentials: creds }],
      [{ protocol: 'http', hostname: 'mine.localhost', backend: `127.0.0.1:${backendPort}` }],
    );
    await waitFor(() => log.lines.some((l) => l.msg === 'tunnel dial failed'), 3000, 'dial failure');
    expect(impostor.gateway.agentCount).toBe(0);
    await pinned.close(500);
    await impostor.stop();
    impostor.dir.remove();
  });

  it('survives random bytes on the tunnel port', async () => {
    for (let i = 0; i < 5; i++) {
      const socket = tlsConnect({ host: '127.0.0.1', port: gw.addresses.tunnel.port, rejectUnauthorized: false });
      socket.on('error', () => {});
      const raw = netConnect(gw.addresses.tunnel.port, '127.0.0.1');
      raw.on('error', () => {});
      raw.write(randomBytes(4096));
      raw.end();
      socket.destroy();
    }
    expect((await get(gw.httpPort, 'mine.localhost')).status).toBe(200);
  });

  it('closes a session that sends malformed frames, and keeps serving others', async () => {
    const files = await gw.issueAgent('hostile', { http: ['hostile.localhost'] });
    const ws = new WebSocket(`${gw.tunnelUrl}/v1/tunnel`, {
      ca: readFileSync(files.caFile),
      cert: readFileSync(files.certFile),
      key: readFileSync(files.keyFile),
    });
    await once(ws, 'open');
    await waitFor(() => gw.gateway.agentCount === 2);
    ws.send(Buffer.concat([encodeFrame(FrameType.PING, 0, 0, Buffer.alloc(8)), randomBytes(100)]));
    const [code] = await once(ws, 'close');
    expect(code).not.toBe(1000);
    await waitFor(() => gw.gateway.agentCount === 1);
    expect(gw.log.find('tunnel protocol error; closing session')).toBeDefined();
    // Text frames and oversized messages are refused too.
    const ws2 = new WebSocket(`${gw.tunnelUrl}/v1/tunnel`, {
      ca: readFileSync(files.caFile),
      cert: readFileSync(files.certFile),
      key: readFileSync(files.keyFile),
    });
    await once(ws2, 'open');
    ws2.send('hello as text');
    await once(ws2, 'close');
    const ws3 = new WebSocket(`${gw.tunnelUrl}/v1/tunnel`, {
      ca: readFileSync(files.caFile),
      cert: readFileSync(files.certFile),
      key: readFileSync(files.keyFile),
    });
    await once(ws3, 'open');
    ws3.send(Buffer.alloc(2 * 1024 * 1024));
    const [code3] = await once(ws3, 'close');
    expect(code3).toBe(1009);
    expect((await get(gw.httpPort, 'mine.localhost')).status).toBe(200);
  });

  it('answers bad WebSocket handshakes on the tunnel port with an HTTP status, before any session', async () => {
    const files = await gw.issueAgent('handshaker', { http: ['handshake.localhost'] });
    const upgrade = (path: string, headers: Record<string, string>): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = httpsRequest(`${gw.tunnelUrl.replace(/^wss:/, 'https:')}${path}`, {
          ca: readFileSync(files.caFile),
          cert: readFileSync(files.certFile),
          key: readFileSync(files.keyFile),
          agent: false,
          headers,
        });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('upgrade', (res, socket) => {
          socket.destroy();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    const good = {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    };
    expect(await upgrade('/other', good)).toBe(404);
    expect(await upgrade('/v1/tunnel', { ...good, 'Sec-WebSocket-Version': '8' })).toBe(426);
    expect(await upgrade('/v1/tunnel', { ...good, 'Sec-WebSocket-Key': 'short' })).toBe(400);
    expect(await upgrade('/v1/tunnel', good)).toBe(101);
    await waitFor(() => gw.gateway.agentCount === 1); // the accepted one was dropped again
    expect(
      gw.log.lines.filter((l) => l.msg === 'bad WebSocket handshake on the tunnel port').map((l) => l.reason),
    ).toEqual(['Sec-WebSocket-Version 13 required', 'invalid Sec-WebSocket-Key']);
  });

  it('cuts off an agent that floods pings without reading the pongs', async () => {
    const files = await gw.issueAgent('pinger', { http: ['pinger.localhost'] });
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: gw.addresses.tunnel.port,
      ca: readFileSync(files.caFile),
      cert: readFileSync(files.certFile),
      key: readFileSync(files.keyFile),
      servername: 'localhost',
      rejectUnauthorized: false,
    });
    socket.on('error', () => {});
    await once(socket, 'secureConnect');
    socket.write(
      `GET /v1/tunnel HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
    );
    const [answer] = (await once(socket, 'data')) as [Buffer];
    expect(answer.toString('latin1')).toMatch(/^HTTP\/1\.1 101/);
    await waitFor(() => gw.gateway.agentCount === 2);
    socket.pause(); // never read a pong
    // 100,000 masked (zero key) pings of 125 bytes: ~12 MiB of pongs the gateway cannot send.
    const ping = Buffer.concat([Buffer.from([0x89, 0x80 | 125, 0, 0, 0, 0]), Buffer.alloc(125, 1)]);
    socket.write(Buffer.concat(Array.from({ length: 100_000 }, () => ping)));
    await waitFor(() => gw.gateway.agentCount === 1, 10_000, 'the flooding session to be closed');
    socket.destroy();
    expect((await get(gw.httpPort, 'mine.localhost')).status).toBe(200);
  });

  it('closes the session when the agent certificate expires', async () => {
    const files = await gw.issueAgent(
      'short',
      { http: ['short.localhost'] },
      { notAfter: new Date(Date.now() + 2500) },
    );
    const { agent: short } = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: files }],
      [{ protocol: 'http', hostname: 'short.localhost', backend: `127.0.0.1:${backendPort}` }],
    );
    await waitFor(() => gw.gateway.agentCount === 2);
    expect((await get(gw.httpPort, 'short.localhost')).status).toBe(200);
    await waitFor(
      () => gw.log.lines.some((l) => l.msg === 'agent certificate expired; closing its session'),
      5000,
      'expiry',
    );
    expect((await get(gw.httpPort, 'short.localhost')).status).toBe(503);
    await short.close(500);
  });

  it('the agent picks up a renewed certificate without a restart', async () => {
    const files = await gw.issueAgent('renew', { http: ['renew.localhost'] });
    const { agent: renewing, log } = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: files }],
      [
        { protocol: 'http', hostname: 'renew.localhost', backend: `127.0.0.1:${backendPort}` },
        { protocol: 'http', hostname: 'renewed.localhost', backend: `127.0.0.1:${backendPort}` },
      ],
    );
    await waitFor(() => gw.gateway.agentCount === 2);
    expect((await get(gw.httpPort, 'renewed.localhost')).status).toBe(404);
    await gw.issueAgent('renew', { http: ['renew.localhost', 'renewed.localhost'] });
    await waitFor(
      () => log.lines.some((l) => l.msg === 'credentials changed; rotating tunnel sessions'),
      5000,
      'reload',
    );
    await waitFor(async () => (await get(gw.httpPort, 'renewed.localhost')).status === 200, 5000, 'new grant to serve');
    await waitFor(() => gw.gateway.agentCount === 2, 5000, 'old session to drain');
    await renewing.close(500);
  });
});
