import { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { get, startHttpBackend } from '../helpers/http-client.ts';
import { startGateway, waitFor } from '../helpers/fixture.ts';
import { freeWildcardPort } from '../helpers/ports.ts';
import { spawnWebgw } from '../helpers/processes.ts';

describe('webgw agent (the CLI) reloads its config file', () => {
  let backend: Server;
  let port: number;

  beforeAll(async () => {
    ({ server: backend, port } = await startHttpBackend());
  });
  afterAll(() => backend.close());

  it('starts with nothing to serve, then serves what a new config adds, and survives a broken one', async () => {
    const gw = await startGateway();
    const creds = await gw.issueAgent('reload', { http: ['one.localhost', 'two.localhost'] });
    const file = gw.dir.file('agent.json');
    const config = (routes: unknown[], gateways = true): string =>
      JSON.stringify({
        gateways: gateways ? [{ name: 'gw', endpoints: [gw.tunnelUrl], ...creds }] : [],
        routes,
        reconnect: { initialMs: 50, maxMs: 500 },
      });
    writeFileSync(file, config([], false));
    const agent = spawnWebgw(['agent', '--config', file]);
    try {
      await new Promise((r) => setTimeout(r, 1500));
      expect(agent.proc.exitCode).toBeNull(); // waiting for a config, neither crashed nor exited
      writeFileSync(file, config([{ protocol: 'http', hostname: 'one.localhost', backend: `127.0.0.1:${port}` }]));
      await waitFor(() => gw.gateway.agentCount === 1, 20_000, 'the first config');
      expect((await get(gw.httpPort, 'one.localhost')).body).toBe('served one.localhost');
      expect((await get(gw.httpPort, 'two.localhost')).status).toBe(502); // granted, not routed by the agent
      writeFileSync(file, '{"gateways": [');
      await agent.waitForLog((l) => l.msg === 'new agent config is invalid; keeping the running one', 20_000);
      expect((await get(gw.httpPort, 'one.localhost')).status).toBe(200);
      writeFileSync(
        file,
        config([
          { protocol: 'http', hostname: 'one.localhost', backend: `127.0.0.1:${port}` },
          { protocol: 'http', hostname: 'two.localhost', backend: `127.0.0.1:${port}` },
        ]),
      );
      await waitFor(async () => (await get(gw.httpPort, 'two.localhost')).status === 200, 20_000, 'the second route');
    } finally {
      expect(await agent.stop()).toBe(0);
      await gw.stop();
      gw.dir.remove();
    }
  });

  it('changes config without dropping a request or going unready: the new agent dials before the old one drains', async () => {
    const gw = await startGateway();
    const creds = await gw.issueAgent('handover', { http: ['one.localhost', 'two.localhost'] });
    const file = gw.dir.file('agent.json');
    const adminPort = await freeWildcardPort();
    const route = (host: string): unknown => ({ protocol: 'http', hostname: host, backend: `127.0.0.1:${port}` });
    const config = (routes: unknown[]): string =>
      JSON.stringify({
        gateways: [{ name: 'gw', endpoints: [gw.tunnelUrl], ...creds }],
        routes,
        admin: { address: '127.0.0.1', port: adminPort },
        reconnect: { initialMs: 50, maxMs: 500 },
      });
    writeFileSync(file, config([route('one.localhost')]));
    const agent = spawnWebgw(['agent', '--config', file]);
    const failures: string[] = [];
    let sent = 0;
    let probes = 0;
    let running = true;
    const load = (async () => {
      while (running) {
        sent++;
        const r = await get(gw.httpPort, 'one.localhost').catch((err: Error) => ({ status: 0, body: err.message }));
        if (r.status !== 200) failures.push(`request ${sent}: ${r.status} ${r.body}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const readiness = (async () => {
      while (running) {
        probes++;
        const r = await get(adminPort, 'x', '/readyz').catch((err: Error) => ({ status: 0, body: err.message }));
        if (r.status !== 200) failures.push(`readyz ${probes}: ${r.status} ${r.body}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    try {
      await waitFor(async () => (await get(adminPort, 'x', '/readyz').catch(() => ({ status: 0 }))).status === 200);
      failures.length = 0; // counted from the first moment the agent serves
      writeFileSync(file, config([route('one.localhost'), route('two.localhost')]));
      await waitFor(async () => (await get(gw.httpPort, 'two.localhost')).status === 200, 20_000, 'the new route');
      await agent.waitForLog((l) => l.msg === 'tunnel closed', 10_000); // the old agent's session
      await new Promise((resolve) => setTimeout(resolve, 1000));
    } finally {
      running = false;
      await Promise.all([load, readiness]);
      expect(await agent.stop()).toBe(0);
      await gw.stop();
      gw.dir.remove();
    }
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(20);
    expect(probes).toBeGreaterThan(5);
  });
});
