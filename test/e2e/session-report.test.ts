/**
 * The session table a gateway reports to the controller: only a reader certificate of the
 * gateway's own CA reads it (an agent's certificate, a foreign CA's, or a reader certificate
 * that also carries grants cannot), it is bounded, and the controller's probe turns it into the
 * views the statuses are written from.
 */
import { request } from 'node:https';
import { systemClock } from '../../src/common/clock.ts';
import { SESSION_REPORT_PATH } from '../../src/common/session-report.ts';
import { createLogger } from '../../src/common/log.ts';
import { SessionProbe } from '../../src/controller/sessions/probe.ts';
import { SESSION_READER_GRANT } from '../../src/pki/grants.ts';
import { createCA, issueCertificate, issueControllerCertificate, type KeyPairPem } from '../../src/pki/issue.ts';
import { hours, startAgent, startGateway, waitFor, type GatewayFixture } from '../helpers/fixture.ts';
import { startHttpBackend } from '../helpers/http-client.ts';

interface Answer {
  status: number;
  body: string;
}

function ask(gw: GatewayFixture, client: KeyPairPem, opts: { method?: string; path?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: gw.addresses.tunnel.port,
        path: opts.path ?? SESSION_REPORT_PATH,
        method: opts.method ?? 'GET',
        servername: 'localhost',
        ca: gw.ca.certPem,
        cert: client.certPem,
        key: client.keyPem,
        agent: false,
      },
      (res) => {
        let body = '';
        res
          .setEncoding('utf8')
          .on('data', (d: string) => {
            body += d;
          })
          .on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('session report', () => {
  let gw: GatewayFixture;
  let reader: KeyPairPem;
  const backend = startHttpBackend();
  let stopAgent: () => Promise<void> = async () => {};

  beforeAll(async () => {
    gw = await startGateway();
    reader = issueControllerCertificate(gw.ca, SESSION_READER_GRANT, hours(1));
    const creds = await gw.issueAgent('web', { http: ['web.example.com'], identity: 't/web/u1' });
    const { agent } = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: creds }],
      [{ protocol: 'http', hostname: 'web.example.com', backend: `127.0.0.1:${(await backend).port}` }],
    );
    stopAgent = () => agent.close(1000);
    await waitFor(() => gw.gateway.agentCount === 1, 10_000, 'agent');
  });

  afterAll(async () => {
    await stopAgent();
    await gw.stop();
    (await backend).server.close();
    gw.dir.remove();
  });

  it('tells the reader every session, with its identity, start and round trip', async () => {
    const answer = await ask(gw, reader);
    expect(answer.status).toBe(200);
    const report = JSON.parse(answer.body) as {
      routes: number;
      sessions: Array<{ identity: string; since: string; draining: boolean }>;
    };
    expect(report.routes).toBe(1);
    expect(report.sessions).toEqual([expect.objectContaining({ identity: 't/web/u1', draining: false })]);
    expect(Date.now() - Date.parse(report.sessions[0]!.since)).toBeLessThan(60_000);
  });

  it("refuses an agent's certificate, and a reader certificate that also grants routes", async () => {
    const agentPair = issueCertificate(
      gw.ca,
      { commonName: 'agent', usage: 'client', uris: ['webgw:http:web.example.com', 'webgw:id:t/web/u1'] },
      hours(1),
    );
    expect((await ask(gw, agentPair)).status).toBe(403);
    const both = issueCertificate(
      gw.ca,
      { commonName: 'both', usage: 'client', uris: [SESSION_READER_GRANT, 'webgw:http:other.example.com'] },
      hours(1),
    );
    expect((await ask(gw, both)).status).toBe(403);
    const withDns = issueCertificate(
      gw.ca,
      { commonName: 'dns', usage: 'client', hosts: ['controller.example.com'], uris: [SESSION_READER_GRANT] },
      hours(1),
    );
    expect((await ask(gw, withDns)).status).toBe(403);
    const serverUsage = issueCertificate(
      gw.ca,
      { commonName: 'srv', usage: 'server', uris: [SESSION_READER_GRANT] },
      hours(1),
    );
    await expect(ask(gw, serverUsage)).rejects.toThrow();
  });

  it('refuses a reader certificate of another CA at the handshake', async () => {
    const foreign = issueControllerCertificate(createCA('someone else', hours(1)), SESSION_READER_GRANT, hours(1));
    await expect(ask(gw, foreign)).rejects.toThrow();
    expect(gw.log.lines.filter((l) => l.msg === 'agent refused at TLS handshake').at(-1)).toMatchObject({
      reason: 'untrusted',
    });
  });

  it('answers GET only, and at most five reports a second', async () => {
    expect((await ask(gw, reader, { method: 'POST' })).status).toBe(405);
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 30 }, () => ask(gw, reader)));
    const seconds = Math.ceil((Date.now() - started) / 1000) + 1;
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(5 * seconds);
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    if (seconds < 6) expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
  });

  it("cannot open a tunnel with a reader's certificate", async () => {
    const dir = gw.dir;
    const { writeKeyPair } = await import('../../src/pki/files.ts');
    const files = await writeKeyPair(dir.path, 'reader', reader);
    const { agent, log } = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: { caFile: dir.file('ca.crt'), ...files } }],
      [{ protocol: 'http', hostname: 'web.example.com', backend: '127.0.0.1:1' }],
    );
    try {
      await waitFor(() => log.lines.some((l) => /403/.test(JSON.stringify(l))), 10_000, 'a 403 for the reader');
      expect(gw.gateway.agentCount).toBe(1);
    } finally {
      await agent.close(500);
    }
  });

  it("gives the controller's probe a view per identity and per replica, and says when a replica cannot be read", async () => {
    await new Promise((r) => setTimeout(r, 1000));
    const changes: string[] = [];
    const probe = new SessionProbe({
      intervalMs: 60_000,
      clock: systemClock,
      logger: createLogger({}, { level: 'error' }),
      targets: () => [
        {
          gateway: 'eu',
          ca: gw.ca,
          serverName: 'localhost',
          port: gw.addresses.tunnel.port,
          replicas: [
            { pod: 'eu-a', address: '127.0.0.1' },
            { pod: 'eu-b', address: '127.0.0.2' },
          ],
        },
      ],
      onGatewayChanged: (g) => changes.push(`gateway ${g}`),
      onServicesChanged: (g, ids) => changes.push(`services ${g} ${ids === 'all' ? 'all' : [...ids].join(',')}`),
    });
    probe.start();
    try {
      await waitFor(() => probe.observation('eu') !== undefined, 10_000, 'a first round');
      expect(changes).toEqual(['gateway eu', 'services eu all']);
      const view = probe.observation('eu')!.forIdentity('t/web/u1');
      expect(view[0]).toMatchObject({ name: 'eu-a', sessions: 1, reachable: true });
      // Nothing listens on 127.0.0.2 at that port: a replica that cannot be read.
      expect(view[1]).toEqual({ name: 'eu-b', sessions: 0, reachable: false });
      expect(probe.observation('eu')!.proxies()).toEqual([
        { name: 'eu-a', address: '127.0.0.1', reachable: true, sessions: 1, routes: 1 },
        {
          name: 'eu-b',
          address: '127.0.0.2',
          reachable: false,
          sessions: 0,
          routes: 0,
          message: 'unreachable (ECONNREFUSED)',
        },
      ]);
    } finally {
      probe.pause();
    }
  });
});
