/**
 * Opens a tunnel stream for a public connection: looks the route up, then tries its agents in
 * round-robin order. A stream that fails before any byte was exchanged (refused, session gone,
 * stream limit) is retried on the next agent (docs/architecture.md, Routing at the gateway).
 */
import { WebgwError, isWebgwError } from '../common/errors.ts';
import type { Clock } from '../common/clock.ts';
import type { OpenRequest } from '../tunnel/open.ts';
import type { TunnelStream } from '../tunnel/stream.ts';
import type { AgentLink } from './agent-link.ts';
import { tunnelProtocolOf, type RouteKind, type RouteTable } from './route-table.ts';

export interface OpenedStream {
  stream: TunnelStream;
  agent: AgentLink;
}

export interface ConnectorOptions {
  routes: RouteTable<AgentLink>;
  clock: Clock;
  openTimeoutMs: number;
  /** How long a connection waits for an agent, and the warm-up after start (config.ts limits). */
  agentWaitMs?: number;
  warmupMs?: number;
}

export type RouteStatus = 'unknown' | 'no-agent' | 'ok';

/**
 * Connections waiting for an agent at once, over all routes and for one route: beyond either they
 * are answered at once, so clients of one tenant's dead route cannot take every place.
 */
const MAX_WAITING = 10_000;
const MAX_WAITING_PER_ROUTE = 1000;

export class Connector {
  private readonly opts: ConnectorOptions;
  private readonly startedAt: number;
  private readonly waiting = new Set<() => void>();
  private readonly waitingPerRoute = new Map<string, number>();

  constructor(opts: ConnectorOptions) {
    this.opts = opts;
    this.startedAt = opts.clock.now();
  }

  /** 'unknown' (404), 'no-agent' (503) or 'ok', without rotating the round-robin cursor. */
  status(protocol: RouteKind, target: string | number): RouteStatus {
    return this.opts.routes.status(protocol, target, this.opts.clock.now());
  }

  /**
   * The route's status once an agent serves it, or once waiting is over: a route whose agents
   * just left waits up to agentWaitMs for one to come back; during the warm-up after start, a
   * name nobody registered yet waits too (until the warm-up ends, at most agentWaitMs). Without
   * those settings, or with MAX_WAITING connections already waiting, it answers at once.
   */
  async awaitAgent(protocol: RouteKind, target: string | number): Promise<RouteStatus> {
    return (await this.awaitRoute([protocol], target)).status;
  }

  /**
   * awaitAgent over several ways to serve one name (a TLS connection may be passed through or
   * terminated): the first of `kinds` an agent serves, else the first one known.
   */
  async awaitRoute(
    kinds: readonly [RouteKind, ...RouteKind[]],
    target: string | number,
  ): Promise<{ kind: RouteKind; status: RouteStatus }> {
    let found = this.statusOf(kinds, target);
    const clock = this.opts.clock;
    const waitMs = this.opts.agentWaitMs ?? 0;
    const allowed =
      found.status === 'no-agent' ? waitMs : Math.min(waitMs, this.startedAt + (this.opts.warmupMs ?? 0) - clock.now());
    const route = `${kinds.join('|')}:${target}`;
    const onRoute = this.waitingPerRoute.get(route) ?? 0;
    if (found.status === 'ok' || allowed <= 0 || this.waiting.size >= MAX_WAITING || onRoute >= MAX_WAITING_PER_ROUTE)
      return found;
    this.waitingPerRoute.set(route, onRoute + 1);
    try {
      const deadline = clock.now() + allowed;
      while (found.status !== 'ok' && clock.now() < deadline) {
        await new Promise<void>((resolve) => {
          const wake = (): void => {
            timer.cancel();
            this.waiting.delete(wake);
            resolve();
          };
          const timer = clock.setTimeout(wake, deadline - clock.now());
          this.waiting.add(wake);
        });
        found = this.statusOf(kinds, target);
      }
      return found;
    } finally {
      const left = (this.waitingPerRoute.get(route) ?? 1) - 1;
      if (left > 0) this.waitingPerRoute.set(route, left);
      else this.waitingPerRoute.delete(route);
    }
  }

  private statusOf(
    kinds: readonly [RouteKind, ...RouteKind[]],
    target: string | number,
  ): { kind: RouteKind; status: RouteStatus } {
    let known: { kind: RouteKind; status: RouteStatus } | undefined;
    for (const kind of kinds) {
      const status = this.status(kind, target);
      if (status === 'ok') return { kind, status };
      if (status === 'no-agent') known ??= { kind, status };
    }
    return known ?? { kind: kinds[0], status: 'unknown' };
  }

  /** An agent registered its routes: every waiting connection looks again. */
  routesChanged(): void {
    for (const wake of [...this.waiting]) wake();
  }

  /** The next agent for a route in round-robin order (one step of the rotation), if any serves it. */
  pick(protocol: RouteKind, target: string | number): AgentLink | undefined {
    const found = this.opts.routes.lookup(protocol, target, this.opts.clock.now());
    return found.kind === 'agents' ? this.opts.routes.rotate(found.key, found.agents)[0] : undefined;
  }

  /**
   * Opens a stream on `preferred` if given (HTTP picked it, and keeps a pool per agent: no second
   * rotation step), else on the next agent in round-robin order; falls back to the route's other
   * agents when that fails. `kind` is the route the client came by (https for a request on a
   * terminated TLS connection); it must carry `request.protocol` to the agent.
   * Throws WEBGW_ERR_NO_ROUTE (unknown), _NO_AGENT (none connected), _BACKEND or _TIMEOUT.
   */
  async open(request: OpenRequest, preferred?: AgentLink, kind: RouteKind = request.protocol): Promise<OpenedStream> {
    if (tunnelProtocolOf(kind) !== request.protocol)
      throw new WebgwError('WEBGW_ERR_NO_ROUTE', `a ${kind} route does not carry ${request.protocol} streams`);
    const target = request.protocol === 'tcp' ? request.port : request.hostname;
    const found = this.opts.routes.lookup(kind, target, this.opts.clock.now());
    if (found.kind === 'unknown') throw new WebgwError('WEBGW_ERR_NO_ROUTE', `no route for ${kind} ${target}`);
    if (found.kind === 'no-agent')
      throw new WebgwError('WEBGW_ERR_NO_AGENT', `no agent connected for ${kind} ${target}`);
    const agents =
      preferred && found.agents.includes(preferred)
        ? [preferred, ...found.agents.filter((a) => a !== preferred)]
        : this.opts.routes.rotate(found.key, found.agents);
    let lastError: unknown;
    for (const agent of agents) {
      try {
        return { stream: await this.openOn(agent, request), agent };
      } catch (err) {
        lastError = err;
        // Nothing was exchanged on that agent's stream: the next agent may take the request.
        if (!(isWebgwError(err) && err.anotherAgent)) break;
      }
    }
    if (isWebgwError(lastError, 'WEBGW_ERR_TIMEOUT')) throw lastError;
    throw new WebgwError(
      'WEBGW_ERR_BACKEND',
      `every agent for ${request.protocol} ${target} failed: ${(lastError as Error)?.message}`,
      { cause: lastError },
    );
  }

  private async openOn(agent: AgentLink, request: OpenRequest): Promise<TunnelStream> {
    const stream = agent.session.open(request);
    const timer = this.opts.clock.setTimeout(() => {
      stream.destroy(
        new WebgwError('WEBGW_ERR_TIMEOUT', `agent ${agent.id} did not accept within ${this.opts.openTimeoutMs} ms`),
      );
    }, this.opts.openTimeoutMs);
    try {
      await stream.accepted();
      return stream;
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause;
      throw isWebgwError(cause, 'WEBGW_ERR_TIMEOUT') ? cause : err;
    } finally {
      timer.cancel();
    }
  }
}
