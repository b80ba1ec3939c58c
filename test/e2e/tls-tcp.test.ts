import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  connect as netConnect,
  createServer as createNetServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { freeLoopbackPort } from '../../src/common/net.ts';
import { createCA, issueServerCertificate } from '../../src/pki/issue.ts';
import { rawExchange } from '../helpers/http-client.ts';
import { hours, startAgent, startGateway, waitFor, type GatewayFixture } from '../helpers/fixture.ts';
import type { Agent } from '../../src/agent/agent.ts';

async function listenOn(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

const MiB = 1024 * 1024;
const BULK = 64 * MiB;
const pattern = randomBytes(MiB);
/** The i-th MiB of a deterministic stream both ends can regenerate. */
function bulkBlock(i: number, salt: number): Buffer {
  const b = Buffer.from(pattern);
  b.writeUInt32BE(i, 0);
  b.writeUInt32BE(salt, 4);
  return b;
}

async function writeBulk(socket: Socket, salt: number): Promise<string> {
  const hash = createHash('sha256');
  for (let i = 0; i < BULK / MiB; i++) {
    const block = bulkBlock(i, salt);
    hash.update(block);
    if (!socket.write(block)) await once(socket, 'drain');
  }
  return hash.digest('hex');
}

describe('TLS passthrough and raw TCP', () => {
  // The service's own CA and key: the gateway never sees them.
  const serviceCa = createCA('service CA', hours(2));
  const serviceCert = issueServerCertificate(serviceCa, ['db.localhost'], hours(2));
  let gw: GatewayFixture;
  let agent: Agent;
  let tlsBackend: Server;
  let tcpBackend: Server;
  let proxyBackend: Server;
  let tcpPort: number;
  let proxyPortV1: number;
  let proxyPortV2: number;
  const proxyHeaders: Buffer[] = [];

  beforeAll(async () => {
    tlsBackend = createTlsServer({ cert: serviceCert.certPem, key: serviceCert.keyPem }, (s: TLSSocket) => {
      s.on('error', () => {});
      s.end(`secret over TLS to ${s.servername}\n`);
    });
    // Hashes what it receives and answers with that hash. A client that starts with "BULK"
    // first gets 64 MiB of the backend's own data.
    tcpBackend = createNetServer({ allowHalfOpen: true }, (s: Socket) => {
      s.on('error', () => {});
      const hash = createHash('sha256');
      let size = 0;
      let sending: Promise<unknown> = Promise.resolve();
      s.on('data', (c: Buffer) => {
        if (size === 0 && c.subarray(0, 4).toString() === 'BULK') sending = writeBulk(s, 2);
        hash.update(c);
        size += c.length;
      });
      s.on('end', () => void sending.then(() => s.end(JSON.stringify({ size, sha256: hash.digest('hex') }))));
    });
    proxyBackend = createNetServer((s) => {
      s.on('error', () => {});
      s.once('data', (c: Buffer) => {
        proxyHeaders.push(c);
        s.end();
      });
    });
    const [tlsPort, tcpBackendPort, proxyBackendPort] = await Promise.all([
      listenOn(tlsBackend),
      listenOn(tcpBackend),
      listenOn(proxyBackend),
    ]);
    tcpPort = await freeLoopbackPort();
    proxyPortV1 = await freeLoopbackPort();
    proxyPortV2 = await freeLoopbackPort();
    const ports = [tcpPort, proxyPortV1, proxyPortV2].sort((a, b) => a - b);
    gw = await startGateway({ tcpRange: { from: ports[0]!, to: ports[2]! }, limits: { clientHelloTimeoutMs: 500 } });
    const creds = await gw.issueAgent('db', { tls: ['db.localhost'], tcp: [tcpPort, proxyPortV1, proxyPortV2] });
    ({ agent } = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: creds }],
      [
        { protocol: 'tls', hostname: 'db.localhost', backend: `127.0.0.1:${tlsPort}` },
        { protocol: 'tcp', port: tcpPort, backend: `127.0.0.1:${tcpBackendPort}` },
        { protocol: 'tcp', port: proxyPortV1, backend: `127.0.0.1:${proxyBackendPort}`, proxyProtocol: 'v1' },
        { protocol: 'tcp', port: proxyPortV2, backend: `127.0.0.1:${proxyBackendPort}`, proxyProtocol: 'v2' },
      ],
    ));
    await waitFor(() => gw.gateway.tcpPorts.length === 3, 10_000, 'TCP listeners');
  });

  afterAll(async () => {
    await agent.close(1000);
    await gw.stop();
    for (const s of [tlsBackend, tcpBackend, proxyBackend]) s.close();
    gw.dir.remove();
  });

  it("completes a handshake against the backend's own certificate via SNI", async () => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: gw.tlsPort,
      servername: 'db.localhost',
      ca: serviceCa.certPem,
    });
    await once(socket, 'secureConnect');
    expect(socket.authorized).toBe(true);
    expect(socket.getPeerX509Certificate()?.subjectAltName).toBe('DNS:db.localhost');
    const chunks: Buffer[] = [];
    for await (const c of socket) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('secret over TLS to db.localhost\n');
  });

  it('refuses an unknown SNI with an unrecognized_name alert', async () => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: gw.tlsPort,
      servername: 'other.localhost',
      ca: serviceCa.certPem,
    });
    const [err] = await once(socket, 'error');
    expect(String(err.message)).toMatch(/unrecognized name|alert number 112/i);
  });

  it('refuses a ClientHello without SNI', async () => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: gw.tlsPort,
      ca: serviceCa.certPem,
      rejectUnauthorized: false,
    });
    const [err] = await once(socket, 'error');
    expect(String(err.message)).toMatch(/unrecognized name|alert number 112/i);
  });

  it('closes on garbage instead of a ClientHello', async () => {
    const res = await rawExchange(gw.tlsPort, 'GET / HTTP/1.1\r\nHost: db.localhost\r\n\r\n');
    expect(res.closed).toBe(true);
    expect(Buffer.from(res.text, 'latin1')[0]).toBe(21); // a TLS alert record
  });

  it('closes a client that never finishes its ClientHello', async () => {
    const res = await rawExchange(gw.tlsPort, Buffer.from([22, 3, 1, 0, 200, 1]), 3000);
    expect(res.closed).toBe(true);
    expect(res.elapsedMs).toBeLessThan(2000);
  });

  it('relays raw TCP bit-exact both ways (64 MiB each way)', async () => {
    const socket = netConnect({ host: '127.0.0.1', port: tcpPort, allowHalfOpen: true });
    await once(socket, 'connect');
    const received = createHash('sha256');
    let receivedBytes = 0;
    const trailer: Buffer[] = [];
    socket.on('data', (c: Buffer) => {
      const bulkPart = c.subarray(0, Math.max(0, BULK - receivedBytes));
      received.update(bulkPart);
      receivedBytes += bulkPart.length;
      if (bulkPart.length < c.length) trailer.push(c.subarray(bulkPart.length));
    });
    socket.write('BULK');
    const upHash = createHash('sha256').update('BULK');
    const expectedDown = createHash('sha256');
    for (let i = 0; i < BULK / MiB; i++) expectedDown.update(bulkBlock(i, 2));
    // Upload and download at the same time.
    for (let i = 0; i < BULK / MiB; i++) {
      const block = bulkBlock(i, 1);
      upHash.update(block);
      if (!socket.write(block)) await once(socket, 'drain');
    }
    socket.end();
    await once(socket, 'end');
    expect(receivedBytes).toBe(BULK);
    expect(received.digest('hex')).toBe(expectedDown.digest('hex'));
    expect(JSON.parse(Buffer.concat(trailer).toString())).toEqual({ size: BULK + 4, sha256: upHash.digest('hex') });
  }, 60_000);

  it('writes a PROXY v1 header with the client address', async () => {
    const socket = netConnect({ host: '127.0.0.1', port: proxyPortV1 });
    await once(socket, 'connect');
    const localPort = socket.localPort;
    await once(socket, 'close');
    expect(proxyHeaders.at(-1)!.toString()).toBe(`PROXY TCP4 127.0.0.1 127.0.0.1 ${localPort} ${proxyPortV1}\r\n`);
  });

  it('writes a PROXY v2 header with the client address', async () => {
    const socket = netConnect({ host: '127.0.0.1', port: proxyPortV2 });
    await once(socket, 'connect');
    const localPort = socket.localPort!;
    await once(socket, 'close');
    const h = proxyHeaders.at(-1)!;
    expect(h.subarray(0, 12).toString('hex')).toBe('0d0a0d0a000d0a515549540a');
    expect(h[12]).toBe(0x21);
    expect(h[13]).toBe(0x11);
    expect([...h.subarray(16, 20)]).toEqual([127, 0, 0, 1]);
    expect(h.readUInt16BE(24)).toBe(localPort);
    expect(h.readUInt16BE(26)).toBe(proxyPortV2);
  });

  it('serves 1,000 concurrent streams over one agent session', async () => {
    const results = await Promise.all(
      Array.from({ length: 1000 }, async (_v, i) => {
        const socket = netConnect({ host: '127.0.0.1', port: tcpPort, allowHalfOpen: true });
        await once(socket, 'connect');
        const data = randomBytes(2000 + i);
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.end(data);
        await once(socket, 'close');
        const reply = JSON.parse(Buffer.concat(chunks).toString()) as { size: number; sha256: string };
        return reply.size === data.length && reply.sha256 === createHash('sha256').update(data).digest('hex');
      }),
    );
    expect(results.filter(Boolean)).toHaveLength(1000);
  }, 60_000);
});
