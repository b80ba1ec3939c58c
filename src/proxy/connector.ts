/**
 * Opens a tunnel stream for a public connection: looks the route up, then tries its agents in
 * round-robin order. A stream that fails before any byte was exchanged (refused, session gone,
 * stream limit) is retried on the next agent (design: Routing at the gateway).
 */
import { WebgwError, isWebgwError } from '../common/errors.ts';
import type { Clock } from '../common/clock.ts';
import type { OpenRequest } from '../tunnel/open.ts';
import type { TunnelStream } from '../tunnel/stream.ts';
import type { AgentLink } from './agent-link.ts';
import type { RouteTable } from './route-table.ts';

export interface OpenedStream {
  stream: TunnelStream;
  agent: AgentLink;
}

export interface ConnectorOptions {
  routes: RouteTable<AgentLink>;
  clock: Clock;
  openTimeoutMs: number;
}

export class Connector {
  private readonly opts: ConnectorOptions;

  constructor(opts: ConnectorOptions) {
    this.opts = opts;
  }

  /** 'unknown' (404), 'no-agent' (503) or 'ok', without rotating the round-robin cursor. */
  status(protocol: OpenRequest['protocol'], target: string | number): 'unknown' | 'no-agent' | 'ok' {
    return this.opts.routes.status(protocol, target, this.opts.clock.now());
  }

  /** The next agent for a route in round-robin order (one step of the rotation), if any serves it. */
  pick(protocol: OpenRequest['protocol'], target: string | number): AgentLink | undefined {
    const found = this.opts.routes.lookup(protocol, target, this.opts.clock.now());
    return found.kind === 'agents' ? this.opts.routes.rotate(found.key, found.agents)[0] : undefined;
  }

  /**
   * Opens a stream on `preferred` if given (HTTP picked it, and keeps a pool per agent: no second
   * rotation step), else on the next agent in round-robin order; falls back to the route's other
   * agents when that fails.
   * Throws WEBGW_ERR_NO_ROUTE (unknown), _NO_AGENT (none connected), _BACKEND or _TIMEOUT.
   */
  async open(request: OpenRequest, preferred?: AgentLink): Promise<OpenedStream> {
    const target = request.protocol === 'tcp' ? request.port : request.hostname;
    const found = this.opts.routes.lookup(request.protocol, target, this.opts.clock.now());
    if (found.kind === 'unknown') throw new WebgwError('WEBGW_ERR_NO_ROUTE', `no route for ${request.protocol} ${target}`);
    if (found.kind === 'no-agent') throw new WebgwError('WEBGW_ERR_NO_AGENT', `no agent connected for ${request.protocol} ${target}`);
    const agents = preferred && found.agents.includes(preferred)
      ? [preferred, ...found.agents.filter((a) => a !== preferred)]
      : this.opts.routes.rotate(found.key, found.agents);
    let lastError: unknown;
    for (const agent of agents) {
      try {
        return { stream: await this.openOn(agent, request), agent };
      } catch (err) {
        lastError = err;
        const retryable = isWebgwError(err) && (err.code === 'WEBGW_ERR_STREAM_REFUSED' || err.code === 'WEBGW_ERR_SESSION_CLOSED' || err.code === 'WEBGW_ERR_STREAM_LIMIT');
        if (!retryable) break;
      }
    }
    if (isWebgwError(lastError, 'WEBGW_ERR_TIMEOUT')) throw lastError;
    throw new WebgwError('WEBGW_ERR_BACKEND', `every agent for ${request.protocol} ${target} failed: ${(lastError as Error)?.message}`, { cause: lastError });
  }

  private async openOn(agent: AgentLink, request: OpenRequest): Promise<TunnelStream> {
    const stream = agent.session.open(request);
    const timer = this.opts.clock.setTimeout(() => {
      stream.destroy(new WebgwError('WEBGW_ERR_TIMEOUT', `agent ${agent.id} did not accept within ${this.opts.openTimeoutMs} ms`));
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
