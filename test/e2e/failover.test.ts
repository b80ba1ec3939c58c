import { get, startHttpBackend } from '../helpers/http-client.ts';
import { startAgent, startGateway, waitFor } from '../helpers/fixture.ts';

/** A backend that says who it is. */
const namedBackend = (name: string) => startHttpBackend((_req, res) => res.end(name));

describe('failover', () => {
  it('two gateways, one agent: both serve; stop one, the other keeps serving', async () => {
    const backend = await namedBackend('app');
    const gwA = await startGateway();
    const gwB = await startGateway();
    const credsA = await gwA.issueAgent('app', { http: ['app.localhost'] });
    const credsB = await gwB.issueAgent('app', { http: ['app.localhost'] });
    const { agent } = await startAgent(
      [
        { name: 'a', endpoints: [gwA.tunnelUrl], credentials: credsA },
        { name: 'b', endpoints: [gwB.tunnelUrl], credentials: credsB },
      ],
      [{ protocol: 'http', hostname: 'app.localhost', backend: `127.0.0.1:${backend.port}` }],
    );
    await waitFor(() => gwA.gateway.agentCount === 1 && gwB.gateway.agentCount === 1);
    expect((await get(gwA.httpPort, 'app.localhost')).body).toBe('app');
    expect((await get(gwB.httpPort, 'app.localhost')).body).toBe('app');
    await gwA.stop();
    for (let i = 0; i < 20; i++) expect((await get(gwB.httpPort, 'app.localhost')).status).toBe(200);
    await agent.close(1000);
    await gwB.stop();
    backend.server.close();
    gwA.dir.remove();
    gwB.dir.remove();
  });

  it('two agents, one gateway: requests spread over both; stop one, no request fails after failover', async () => {
    const one = await namedBackend('one');
    const two = await namedBackend('two');
    const gw = await startGateway();
    const creds1 = await gw.issueAgent('one', { http: ['app.localhost'] });
    const creds2 = await gw.issueAgent('two', { http: ['app.localhost'] });
    const a1 = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: creds1 }],
      [{ protocol: 'http', hostname: 'app.localhost', backend: `127.0.0.1:${one.port}` }],
    );
    const a2 = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: creds2 }],
      [{ protocol: 'http', hostname: 'app.localhost', backend: `127.0.0.1:${two.port}` }],
    );
    await waitFor(() => gw.gateway.agentCount === 2);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 40; i++) {
      const body = (await get(gw.httpPort, 'app.localhost')).body;
      counts[body] = (counts[body] ?? 0) + 1;
    }
    expect(counts.one).toBeGreaterThanOrEqual(10);
    expect(counts.two).toBeGreaterThanOrEqual(10);

    // Stop agent one while a steady stream of requests runs; none may fail.
    const statuses: number[] = [];
    let running = true;
    const load = (async () => {
      while (running) statuses.push((await get(gw.httpPort, 'app.localhost')).status);
    })();
    await new Promise((r) => setTimeout(r, 100));
    await a1.agent.close(2000);
    await waitFor(() => gw.gateway.agentCount === 1);
    await new Promise((r) => setTimeout(r, 200));
    running = false;
    await load;
    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    for (let i = 0; i < 10; i++) expect((await get(gw.httpPort, 'app.localhost')).body).toBe('two');

    await a2.agent.close(1000);
    await gw.stop();
    one.server.close();
    two.server.close();
    gw.dir.remove();
  });

  it('an agent whose backend is down refuses, and the gateway retries on another agent', async () => {
    const two = await namedBackend('two');
    const gw = await startGateway();
    const creds1 = await gw.issueAgent('one', { http: ['app.localhost'] });
    const creds2 = await gw.issueAgent('two', { http: ['app.localhost'] });
    const a1 = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: creds1 }],
      [{ protocol: 'http', hostname: 'app.localhost', backend: '127.0.0.1:1' }],
    );
    const a2 = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: creds2 }],
      [{ protocol: 'http', hostname: 'app.localhost', backend: `127.0.0.1:${two.port}` }],
    );
    await waitFor(() => gw.gateway.agentCount === 2);
    for (let i = 0; i < 10; i++) {
      const res = await get(gw.httpPort, 'app.localhost');
      expect([res.status, res.body]).toEqual([200, 'two']);
    }
    await a1.agent.close(1000);
    await a2.agent.close(1000);
    await gw.stop();
    two.server.close();
    gw.dir.remove();
  });

  it('restarting the gateway: the agent reconnects within its backoff bound, no agent restart', async () => {
    const backend = await namedBackend('app');
    const gw = await startGateway();
    const creds = await gw.issueAgent('app', { http: ['app.localhost'] });
    // reconnect: initialMs 50, maxMs 500 (fixture)
    const { agent } = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: creds }],
      [{ protocol: 'http', hostname: 'app.localhost', backend: `127.0.0.1:${backend.port}` }],
    );
    await waitFor(() => gw.gateway.agentCount === 1);
    expect((await get(gw.httpPort, 'app.localhost')).status).toBe(200);
    await gw.stop();
    await new Promise((r) => setTimeout(r, 1500)); // several failed dials: backoff grows to its cap
    const restartedAt = Date.now();
    await gw.restart();
    await waitFor(() => gw.gateway.agentCount === 1, 5000, 'agent to reconnect');
    expect(Date.now() - restartedAt).toBeLessThan(500 + 300);
    expect((await get(gw.httpPort, 'app.localhost')).body).toBe('app');
    await agent.close(1000);
    await gw.stop();
    backend.server.close();
    gw.dir.remove();
  });
});
