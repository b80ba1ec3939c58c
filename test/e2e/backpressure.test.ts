import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { createCA, issueAgentCertificate, issueServerCertificate } from '../../src/pki/issue.ts';
import { writeKeyPair } from '../../src/pki/files.ts';
import { TempDir, hours } from '../helpers/fixture.ts';
import { spawnWebgw, type WebgwProcess } from '../helpers/processes.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** The bound asserted below, stated in the README as the memory promise. */
const MAX_GROWTH = 64 * MiB;

function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

describe('backpressure', () => {
  const dir = new TempDir();
  let backend: Server;
  let gateway: WebgwProcess;
  let agent: WebgwProcess;
  let httpPort: number;
  let backendSent = 0;

  beforeAll(async () => {
    // A backend that answers every request with 1 GiB, honouring write()'s return value.
    backend = createServer(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': GiB });
      const block = Buffer.alloc(MiB, 7);
      res.on('error', () => {});
      for (let sent = 0; sent < GiB && !res.destroyed; sent += MiB) {
        backendSent += MiB;
        if (!res.write(block)) await drainOrClose(res);
      }
      res.end();
    });
    backend.listen(0, '127.0.0.1');
    await once(backend, 'listening');
    const backendPort = (backend.address() as AddressInfo).port;

    const ca = createCA('bp CA', hours(1));
    await writeKeyPair(dir.path, 'ca', ca);
    await writeKeyPair(dir.path, 'gateway', issueServerCertificate(ca, ['127.0.0.1'], hours(1)));
    await writeKeyPair(
      dir.path,
      'agent',
      issueAgentCertificate(
        ca,
        { http: ['big.localhost'], https: [], tls: [], tlsTerminated: [], h2c: [], tcp: [], identity: 'bp' },
        hours(1),
      ),
    );
    writeFileSync(
      dir.file('gateway.yaml'),
      [
        'tunnel: {address: 127.0.0.1, port: 0, caFile: ca.crt, certFile: gateway.crt, keyFile: gateway.key}',
        'listeners:',
        '  http: {address: 127.0.0.1, port: 0}',
      ].join('\n'),
    );
    gateway = spawnWebgw(['gateway', '--config', dir.file('gateway.yaml')]);
    const tunnel = await gateway.waitForLog((l) => l.msg === 'tunnel endpoint listening');
    const http = await gateway.waitForLog((l) => l.msg === 'HTTP listener ready');
    httpPort = Number(String(http.address).split(':').at(-1));
    writeFileSync(
      dir.file('agent.json'),
      JSON.stringify({
        gateways: [
          {
            name: 'gw',
            endpoints: [`wss://${String(tunnel.address)}`],
            caFile: 'ca.crt',
            certFile: 'agent.crt',
            keyFile: 'agent.key',
          },
        ],
        routes: [{ protocol: 'http', hostname: 'big.localhost', backend: `127.0.0.1:${backendPort}` }],
      }),
    );
    agent = spawnWebgw(['agent', '--config', dir.file('agent.json')]);
    await agent.waitForLog((l) => l.msg === 'tunnel connected');
  });

  afterAll(async () => {
    expect(await agent.stop()).toBe(0);
    expect(await gateway.stop()).toBe(0);
    backend.closeAllConnections();
    backend.close();
    dir.remove();
  });

  it('a client that stops reading bounds the memory of gateway and agent', async () => {
    // Warm up: one full small exchange so both processes have loaded their code paths.
    await new Promise((r) => setTimeout(r, 500));
    const baseline = { gateway: gateway.rssBytes(), agent: agent.rssBytes() };
    const socket = connect(httpPort, '127.0.0.1');
    socket.write('GET /huge HTTP/1.1\r\nHost: big.localhost\r\n\r\n');
    await once(socket, 'data');
    socket.pause(); // ...and never read again
    await new Promise((r) => setTimeout(r, 4000));
    const growth = { gateway: gateway.rssBytes() - baseline.gateway, agent: agent.rssBytes() - baseline.agent };
    const stalledAt = backendSent;
    await new Promise((r) => setTimeout(r, 1000));
    // The backend is held back too: it has written a few windows' worth, nowhere near 1 GiB.
    expect(backendSent).toBe(stalledAt);
    expect(backendSent).toBeLessThan(64 * MiB);
    expect(growth.gateway).toBeLessThan(MAX_GROWTH);
    expect(growth.agent).toBeLessThan(MAX_GROWTH);
    process.stdout.write(
      `backpressure: backend wrote ${(backendSent / MiB).toFixed(0)} MiB of 1 GiB; RSS growth gateway ${(growth.gateway / MiB).toFixed(1)} MiB, agent ${(growth.agent / MiB).toFixed(1)} MiB\n`,
    );
    socket.destroy();
  }, 30_000);
});
