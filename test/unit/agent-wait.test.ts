/**
 * Connector.awaitAgent: who waits for an agent, how long, and how many at once (a gateway handing
 * its ports over, an agent restarting). Time is a FakeClock; routes are a RouteTable of stubs.
 */
import { Connector, type RouteStatus } from '../../src/proxy/connector.ts';
import type { AgentLink } from '../../src/proxy/agent-link.ts';
import { RouteTable } from '../../src/proxy/route-table.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const agent = (id: string): AgentLink => ({ id, draining: false }) as unknown as AgentLink;
const routes = (hosts: string[]) => ({ http: hosts, https: [], tls: [], tlsTerminated: [], tcp: [] });

function setup(opts: { agentWaitMs?: number; warmupMs?: number }) {
  const clock = new FakeClock();
  const table = new RouteTable<AgentLink>();
  const connector = new Connector({ routes: table, clock, openTimeoutMs: 1000, ...opts });
  /** Starts a wait; `settled()` says what it answered, undefined while still waiting. */
  const wait = (host: string) => {
    let answer: RouteStatus | undefined;
    void connector.awaitAgent('http', host).then((s) => {
      answer = s;
    });
    return { settled: () => answer };
  };
  const flush = () => new Promise((r) => setImmediate(r));
  return { clock, table, connector, wait, flush };
}

describe('Connector.awaitAgent', () => {
  it('answers at once without the settings, whatever the route', async () => {
    const { table, wait, flush, clock } = setup({});
    table.add(agent('a'), routes(['up.test']));
    const b = agent('b');
    table.add(b, routes(['gone.test']));
    table.remove(b, clock.now());
    const [up, gone, unknown] = [wait('up.test'), wait('gone.test'), wait('nobody.test')];
    await flush();
    expect([up.settled(), gone.settled(), unknown.settled()]).toEqual(['ok', 'no-agent', 'unknown']);
  });

  it('holds a route whose agents left until one comes back, at most agentWaitMs', async () => {
    const { table, connector, wait, flush, clock } = setup({ agentWaitMs: 5000 });
    const first = agent('first');
    table.add(first, routes(['app.test']));
    table.remove(first, clock.now());
    const back = wait('app.test');
    const never = wait('app.test');
    clock.advance(3000);
    await flush();
    expect(back.settled()).toBeUndefined();
    const second = agent('second');
    table.add(second, routes(['app.test']));
    connector.routesChanged();
    await flush();
    expect(back.settled()).toBe('ok');
    expect(never.settled()).toBe('ok');

    // Gone again and nobody returns: 503 after exactly agentWaitMs.
    table.remove(second, clock.now());
    const late = wait('app.test');
    clock.advance(4999);
    await flush();
    expect(late.settled()).toBeUndefined();
    clock.advance(1);
    await flush();
    expect(late.settled()).toBe('no-agent');
  });

  it('holds unknown names only during the warm-up after start, and never past it', async () => {
    const { table, connector, wait, flush, clock } = setup({ agentWaitMs: 5000, warmupMs: 2000 });
    const arrives = wait('moved.test');
    const early = wait('new.test');
    clock.advance(1000);
    table.add(agent('moved'), routes(['moved.test']));
    connector.routesChanged();
    await flush();
    expect(arrives.settled()).toBe('ok');
    clock.advance(999);
    await flush();
    expect(early.settled()).toBeUndefined();
    clock.advance(1);
    await flush();
    expect(early.settled()).toBe('unknown');
    const after = wait('new.test');
    await flush();
    expect(after.settled()).toBe('unknown');
  });

  it('a withdrawn route is forgotten: unknown at once, no waiting', async () => {
    const { table, wait, flush, clock } = setup({ agentWaitMs: 5000 });
    clock.advance(60_000);
    const a = agent('a');
    table.add(a, routes(['revoked.test']));
    table.remove(a, clock.now(), false);
    const w = wait('revoked.test');
    await flush();
    expect(w.settled()).toBe('unknown');
  });

  it('at most 1,000 connections wait for one route and 10,000 in all; the next are answered at once', async () => {
    const { table, connector, wait, flush, clock } = setup({ agentWaitMs: 5000 });
    const hosts = Array.from({ length: 11 }, (_, i) => `busy${i}.test`);
    for (const host of hosts) {
      const a = agent(host);
      table.add(a, routes([host]));
      table.remove(a, clock.now());
    }
    // One route's clients take 1,000 places, no more.
    const first = Array.from({ length: 1000 }, () => wait(hosts[0]!));
    const overRoute = wait(hosts[0]!);
    await flush();
    expect(overRoute.settled()).toBe('no-agent');
    // Nine more routes fill the rest; then nobody else waits, whatever the route.
    const rest = hosts.slice(1, 10).flatMap((h) => Array.from({ length: 1000 }, () => wait(h)));
    const overAll = wait(hosts[10]!);
    await flush();
    expect(overAll.settled()).toBe('no-agent');
    expect([...first, ...rest].every((w) => w.settled() === undefined)).toBe(true);
    table.add(agent('back'), routes([hosts[0]!]));
    connector.routesChanged();
    await flush();
    expect(first.every((w) => w.settled() === 'ok')).toBe(true);
    // The places are given back once their routes are served: others may wait again.
    for (const h of hosts.slice(1, 10)) table.add(agent(`back-${h}`), routes([h]));
    connector.routesChanged();
    await flush();
    expect(rest.every((w) => w.settled() === 'ok')).toBe(true);
    const again = wait(hosts[10]!);
    await flush();
    expect(again.settled()).toBeUndefined();
  }, 30_000);
});
