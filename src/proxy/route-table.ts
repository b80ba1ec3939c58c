/**
 * Which agents serve which public names and ports. Routes come only from the grants of
 * authenticated agents (docs/architecture.md, Trust model). Pure data structure: no sockets, no timers of its
 * own (time is passed in), so it is tested with tables.
 */
import { hostnameMatches } from '../pki/grants.ts';

/**
 * How a public connection is served, one per grant kind (pki/grants.ts): plain HTTP, HTTPS
 * terminated here, TLS passed through, TLS terminated here and relayed, a TCP port. The agent
 * sees only the tunnel protocol (`tunnelProtocolOf`): https is http to it, tls-terminated is tls.
 */
export type RouteKind = 'http' | 'https' | 'tls' | 'tls-terminated' | 'tcp';

export function tunnelProtocolOf(kind: RouteKind): 'http' | 'tls' | 'tcp' {
  return kind === 'https' ? 'http' : kind === 'tls-terminated' ? 'tls' : kind;
}

export interface RouteAgent {
  readonly id: string;
  /** A draining agent keeps its open streams but gets no new ones. */
  readonly draining: boolean;
}

export interface AgentRoutes {
  http: readonly string[];
  https: readonly string[];
  tls: readonly string[];
  tlsTerminated: readonly string[];
  tcp: readonly number[];
}

export type Lookup<A> =
  /** `key` names the route for rotate(). */
  | { kind: 'agents'; agents: A[]; key: string }
  /** The route had agents recently: answer 503, not 404. */
  | { kind: 'no-agent' }
  | { kind: 'unknown' };

const FORGET_AFTER_MS = 10 * 60 * 1000;
const MAX_REMEMBERED = 10_000;

export class RouteTable<A extends RouteAgent> {
  private readonly byKey = new Map<string, A[]>();
  private readonly wildcards = new Map<string, A[]>();
  private readonly cursor = new Map<string, number>();
  /** Keys whose last agent left, with the time it left. */
  private readonly orphans = new Map<string, number>();
  private readonly routesOf = new Map<A, string[]>();

  add(agent: A, routes: AgentRoutes): void {
    const keys = [
      ...routes.http.map((h) => routeKey('http', h)),
      ...routes.https.map((h) => routeKey('https', h)),
      ...routes.tls.map((h) => routeKey('tls', h)),
      ...routes.tlsTerminated.map((h) => routeKey('tls-terminated', h)),
      ...routes.tcp.map((p) => routeKey('tcp', p)),
    ];
    this.routesOf.set(agent, keys);
    for (const key of keys) {
      const map = key.includes(':*.') ? this.wildcards : this.byKey;
      const list = map.get(key) ?? [];
      list.push(agent);
      map.set(key, list);
      this.orphans.delete(key);
    }
  }

  /**
   * `remember`: a route left without agents answers 503 (and clients may wait for an agent) for a
   * while; false when the route is gone for good (its credential was withdrawn): 404 at once.
   */
  remove(agent: A, now: number, remember = true): void {
    for (const key of this.routesOf.get(agent) ?? []) {
      const map = key.includes(':*.') ? this.wildcards : this.byKey;
      const list = (map.get(key) ?? []).filter((a) => a !== agent);
      if (list.length > 0) {
        map.set(key, list);
        continue;
      }
      map.delete(key);
      this.cursor.delete(key);
      if (!remember) {
        this.orphans.delete(key);
        continue;
      }
      this.orphans.set(key, now);
      if (this.orphans.size > MAX_REMEMBERED) this.orphans.delete(this.orphans.keys().next().value as string);
    }
    this.routesOf.delete(agent);
  }

  /**
   * The agents serving a route, in the table's order. A pure query: it moves nothing, so asking
   * twice for one connection cannot skew the balance (issue 14: the HTTP listener asked twice per
   * new stream and, with two agents, sent every request to the first). Rotation is rotate()'s.
   */
  lookup(protocol: RouteKind, target: string | number, now: number): Lookup<A> {
    const exact = routeKey(protocol, target);
    let key = exact;
    let list = this.byKey.get(exact);
    if (!list && typeof target === 'string') {
      const dot = target.indexOf('.');
      const wildKey = dot > 0 ? routeKey(protocol, `*${target.slice(dot)}`) : '';
      list = this.wildcards.get(wildKey);
      if (list && hostnameMatches(`*${target.slice(dot)}`, target)) key = wildKey;
      else list = undefined;
    }
    const serving = list?.filter((a) => !a.draining) ?? [];
    if (serving.length === 0) {
      if (list || this.remembers(exact, now)) return { kind: 'no-agent' };
      return { kind: 'unknown' };
    }
    return { kind: 'agents', agents: serving, key };
  }

  /**
   * The one place the round-robin cursor moves: `agents` (a lookup's) rotated to start at the
   * route's next agent. Call it once per connection or request.
   */
  rotate(key: string, agents: readonly A[]): A[] {
    const start = (this.cursor.get(key) ?? 0) % agents.length;
    this.cursor.set(key, start + 1);
    return [...agents.slice(start), ...agents.slice(0, start)];
  }

  /** What lookup would say, without the agents: for answering 404/503 before any work. */
  status(protocol: RouteKind, target: string | number, now: number): 'unknown' | 'no-agent' | 'ok' {
    const exact = routeKey(protocol, target);
    let list = this.byKey.get(exact);
    if (!list && typeof target === 'string') {
      const dot = target.indexOf('.');
      if (dot > 0 && hostnameMatches(`*${target.slice(dot)}`, target))
        list = this.wildcards.get(routeKey(protocol, `*${target.slice(dot)}`));
    }
    if (list?.some((a) => !a.draining)) return 'ok';
    return list || this.remembers(exact, now) ? 'no-agent' : 'unknown';
  }

  /** Ports that at least one agent serves (the TCP listeners to keep open). */
  tcpPorts(): Set<number> {
    const ports = new Set<number>();
    for (const key of this.byKey.keys()) if (key.startsWith('tcp:')) ports.add(Number(key.slice(4)));
    return ports;
  }

  /** Routes (names and ports) served by at least one agent. */
  get routeCount(): number {
    return this.byKey.size + this.wildcards.size;
  }

  get agentCount(): number {
    return this.routesOf.size;
  }

  private remembers(key: string, now: number): boolean {
    const since = this.orphans.get(key);
    if (since === undefined) return false;
    if (now - since <= FORGET_AFTER_MS) return true;
    this.orphans.delete(key);
    return false;
  }
}

function routeKey(protocol: RouteKind, target: string | number): string {
  return `${protocol}:${target}`;
}
