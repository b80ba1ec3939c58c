/**
 * Requests are balanced across the agents of a route whatever the pooling (issue 14): lookups
 * are pure and the round-robin cursor moves once per request. Before, the HTTP listener's two
 * lookups per new stream sent every request to the first of two agents.
 */
import { systemClock } from '../../src/common/clock.ts';
import type { AgentLink } from '../../src/proxy/agent-link.ts';
import { Connector } from '../../src/proxy/connector.ts';
import { RouteTable } from '../../src/proxy/route-table.ts';
import type { OpenRequest } from '../../src/tunnel/open.ts';

const request: OpenRequest = {
  protocol: 'http',
  hostname: 'shop.example',
  port: 80,
  client: { address: '', port: 0 },
  local: { address: '', port: 80 },
};

/** An agent whose session accepts every stream at once. */
function fakeAgent(id: string): AgentLink {
  const stream = { accepted: () => Promise.resolve(), destroy: () => {} };
  return { id, draining: false, session: { open: () => stream } } as unknown as AgentLink;
}

/**
 * The HTTP listener's way: pick an agent, reuse one of its idle streams when the pool has one
 * (`pooled`, and the backend keeps its connections), else open a stream preferring it.
 */
async function serve(agents: number, requests: number, pooled: boolean, backendCloses: boolean): Promise<number[]> {
  const routes = new RouteTable<AgentLink>();
  const links = Array.from({ length: agents }, (_, i) => fakeAgent(`a${i}`));
  for (const l of links) routes.add(l, { http: ['shop.example'], https: [], tls: [], tlsTerminated: [], tcp: [] });
  const connector = new Connector({ routes, clock: systemClock, openTimeoutMs: 1000 });
  const idle = new Set<string>();
  const served = new Map<string, number>();
  for (let i = 0; i < requests; i++) {
    const link = connector.pick('http', 'shop.example') as AgentLink;
    let agent = link;
    if (!(pooled && idle.has(link.id))) agent = (await connector.open(request, link)).agent;
    served.set(agent.id, (served.get(agent.id) ?? 0) + 1);
    if (pooled && !backendCloses) idle.add(agent.id);
  }
  return links.map((l) => served.get(l.id) ?? 0);
}

describe('balancing across the agents of a route', () => {
  const cases: Array<[number, boolean, boolean]> = [];
  for (const agents of [1, 2, 3, 4])
    for (const pooled of [true, false])
      for (const backendCloses of [true, false]) cases.push([agents, pooled, backendCloses]);
  it.each(cases)(
    '%i agent(s), pooled %s, backend closes %s: each agent gets its share',
    async (agents, pooled, backendCloses) => {
      const requests = 120;
      const counts = await serve(agents, requests, pooled, backendCloses);
      for (const c of counts) expect(c).toBe(requests / agents);
    },
  );

  it('TLS and TCP connections (no preferred agent) rotate once per connection', async () => {
    const routes = new RouteTable<AgentLink>();
    const links = [fakeAgent('a'), fakeAgent('b')];
    for (const l of links) routes.add(l, { http: [], https: [], tls: ['db.example'], tlsTerminated: [], tcp: [] });
    const connector = new Connector({ routes, clock: systemClock, openTimeoutMs: 1000 });
    const order: string[] = [];
    for (let i = 0; i < 4; i++)
      order.push((await connector.open({ ...request, protocol: 'tls', hostname: 'db.example' })).agent.id);
    expect(order).toEqual(['a', 'b', 'a', 'b']);
    // Lookups alone move nothing.
    for (let i = 0; i < 5; i++) routes.lookup('tls', 'db.example', 0);
    expect((await connector.open({ ...request, protocol: 'tls', hostname: 'db.example' })).agent.id).toBe('a');
  });
});
