/**
 * A hostile tenant against the real gateway process (issue 12): it floods the gateway with
 * sessions of one identity, and every other tenant keeps being served. (Its 1-byte-frame attack
 * on memory is test/unit/tiny-frames.test.ts, measured in a process of its own.)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createCA, issueAgentCertificate, issueServerCertificate } from '../../src/pki/issue.ts';
import { writeKeyPair } from '../../src/pki/files.ts';
import { TunnelSession } from '../../src/tunnel/session.ts';
import { MAX_MESSAGE_BYTES } from '../../src/tunnel/transport.ts';
import { HandshakeError, dialWebSocket } from '../../src/tunnel/websocket/handshake.ts';
import { webSocketTransport } from '../../src/tunnel/websocket/transport.ts';
import { TempDir, hours, waitFor } from '../helpers/fixture.ts';
import { get, startHttpBackend } from '../helpers/http-client.ts';
import { freeWildcardPort } from '../helpers/ports.ts';
import { spawnWebgw, type WebgwProcess } from '../helpers/processes.ts';

const SESSION_LIMIT = 8;

/** A tenant's agent that speaks the tunnel protocol itself, through our own session code. */
async function dialAgent(dir: TempDir, name: string, tunnel: string): Promise<TunnelSession> {
  const tls = {
    ca: readFileSync(dir.file('ca.crt'), 'utf8'),
    cert: readFileSync(dir.file(`${name}.crt`), 'utf8'),
    key: readFileSync(dir.file(`${name}.key`), 'utf8'),
    rejectUnauthorized: true,
  };
  const { socket, head } = await dialWebSocket(`wss://${tunnel}/v1/tunnel`, tls, 5000).result;
  return new TunnelSession(webSocketTransport(socket, head, { role: 'client', maxMessageBytes: MAX_MESSAGE_BYTES }), {
    role: 'client',
  });
}

describe('a hostile tenant', () => {
  const dir = new TempDir();
  let gateway: WebgwProcess;
  let tunnel: string;
  let httpPort: number;
  let tcpPort: number;

  beforeAll(async () => {
    const ca = createCA('hostile CA', hours(1));
    await writeKeyPair(dir.path, 'ca', ca);
    await writeKeyPair(dir.path, 'gateway', issueServerCertificate(ca, ['127.0.0.1'], hours(1)));
    tcpPort = await freeWildcardPort();
    await writeKeyPair(
      dir.path,
      'evil',
      issueAgentCertificate(
        ca,
        {
          http: ['evil.localhost'],
          https: [],
          tls: [],
          tlsTerminated: [],
          h2c: [],
          tcp: [tcpPort],
          identity: 'evil/flood/1',
        },
        hours(1),
      ),
    );
    await writeKeyPair(
      dir.path,
      'good',
      issueAgentCertificate(
        ca,
        { http: ['good.localhost'], https: [], tls: [], tlsTerminated: [], h2c: [], tcp: [], identity: 'good/web/2' },
        hours(1),
      ),
    );
    writeFileSync(
      dir.file('gateway.yaml'),
      [
        'tunnel: {address: 127.0.0.1, port: 0, caFile: ca.crt, certFile: gateway.crt, keyFile: gateway.key}',
        'listeners:',
        '  http: {address: 127.0.0.1, port: 0}',
        `  tcp: {address: 127.0.0.1, portRange: {from: ${tcpPort}, to: ${tcpPort}}}`,
        `limits: {maxSessionsPerIdentity: ${SESSION_LIMIT}}`,
      ].join('\n'),
    );
    gateway = spawnWebgw(['gateway', '--config', dir.file('gateway.yaml')], {
      NODE_OPTIONS: '--max-semi-space-size=16',
    });
    tunnel = String((await gateway.waitForLog((l) => l.msg === 'tunnel endpoint listening')).address);
    httpPort = Number(
      String((await gateway.waitForLog((l) => l.msg === 'HTTP listener ready')).address)
        .split(':')
        .at(-1),
    );
  });

  afterAll(async () => {
    expect(await gateway.stop()).toBe(0);
    dir.remove();
  });

  it('one identity at its session limit leaves every other tenant served', async () => {
    const { server, port } = await startHttpBackend((_req, res) => res.end('good'));
    const good = await dialAgent(dir, 'good', tunnel);
    good.on('stream', (stream) => {
      stream.accept();
      const backend = connect(port, '127.0.0.1');
      backend.on('error', () => stream.destroy());
      stream.on('data', (c: Buffer) => backend.write(c));
      backend.on('data', (c: Buffer) => stream.write(c));
      stream.on('end', () => backend.end());
      backend.on('end', () => stream.end());
    });
    await waitFor(
      async () => (await get(httpPort, 'good.localhost')).status === 200,
      10_000,
      'the good tenant to serve',
    );
    // The flood: sessions of one identity, as fast as they are answered.
    const evil: TunnelSession[] = [];
    const refused: number[] = [];
    const flooding = (async () => {
      for (let i = 0; i < 200; i++) {
        try {
          evil.push(await dialAgent(dir, 'evil', tunnel));
        } catch (err) {
          refused.push(err instanceof HandshakeError ? (err.status ?? 0) : -1);
        }
      }
    })();
    let ok = 0;
    let total = 0;
    while (total < 100) {
      total++;
      if ((await get(httpPort, 'good.localhost')).status === 200) ok++;
    }
    await flooding;
    console.log(
      `session flood: ${evil.length} evil sessions admitted, ${refused.length} refused (${[...new Set(refused)].join(',')}); good tenant ${ok}/${total} requests served`,
    );
    expect(evil.length).toBeLessThanOrEqual(SESSION_LIMIT);
    expect(refused.filter((s) => s === 503).length).toBe(200 - evil.length);
    expect(ok).toBe(total);
    // A second session of the good tenant is still admitted.
    const again = await dialAgent(dir, 'good', tunnel);
    again.destroy();
    for (const s of evil) s.destroy();
    good.destroy();
    server.close();
  }, 120_000);
});
