/**
 * What one HTTP/1.1 request carries through its story (serve-request.ts, serve-upgrade.ts): the
 * connection and head it came with, its Host, and the answers the gateway itself gives for it.
 * Every answer goes through here, so each is observed once in the metrics and said the same way.
 */
import type { Clock } from '../../common/clock.ts';
import { describeError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import type { LogThrottle } from '../../common/log-throttle.ts';
import { plainAddress } from '../../common/net.ts';
import { HttpRequestError, type RequestHead } from '../../common/http/request-parser.ts';
import type { AcmeChallenges } from '../acme-challenges.ts';
import { certificateCovers } from '../certificate-store.ts';
import type { GatewayLimits } from '../config.ts';
import type { Connector } from '../connector.ts';
import type { H2cSessions } from '../http2/h2c-sessions.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { RouteKind } from '../route-table.ts';
import type { ClientConnection } from './client-connection.ts';
import { hostFromHeader, type ForwardContext } from './headers.ts';
import type { IdleStreams } from './idle-streams.ts';
import { messageForStatus, statusForError } from './statuses.ts';

/** What the HTTP listener lends each request: routes, pools, limits and what it reports to. */
export interface HttpServing {
  connector: Connector;
  idle: IdleStreams;
  h2c: H2cSessions;
  limits: GatewayLimits;
  clock: Clock;
  metrics: GatewayMetrics;
  log: Logger;
  /** Failing backends are a tenant's matter: one line per host and interval. */
  upstreamFailures: LogThrottle;
  /** ACME HTTP-01 answers the controller handed over, served on plain HTTP before any route. */
  acmeChallenges?: AcmeChallenges;
  /** The public HTTPS port, for redirects; undefined while there is no TLS listener. */
  httpsPort?: () => number | undefined;
}

export class RequestScope {
  readonly serving: HttpServing;
  readonly conn: ClientConnection;
  readonly head: RequestHead;
  /** The request's Host, normalized; undefined when missing or invalid. */
  readonly hostname: string | undefined;
  /**
   * The routes it may take: on HTTPS the https route only; on plain HTTP the http route, else one
   * served over TLS (HTTPS at the gateway, TLS terminated at the gateway or passed through,
   * perhaps to an agent that terminates it), to redirect to it.
   */
  readonly kinds: [RouteKind, ...RouteKind[]];
  private readonly started: number;
  private readonly observed: boolean;

  constructor(serving: HttpServing, conn: ClientConnection, head: RequestHead, options: { observed: boolean }) {
    this.serving = serving;
    this.conn = conn;
    this.head = head;
    this.hostname = hostFromHeader(head.host);
    this.kinds = conn.origin.scheme === 'https' ? ['https'] : ['http', 'https', 'tls-terminated', 'tls'];
    this.started = serving.clock.now();
    this.observed = options.observed;
  }

  get clientGone(): boolean {
    return this.conn.socket.destroyed;
  }

  /** Only routes that exist become label values, so random Host headers cannot grow the metrics. */
  observe(route: string, status: number): void {
    if (!this.observed) return;
    const seconds = (this.serving.clock.now() - this.started) / 1000;
    this.serving.metrics.httpRequests.observe({ route, code: String(status) }, seconds);
  }

  /** An answer of the gateway's own; `route`: the label it is counted under. */
  answer(status: number, message: string, route = '-', keep = this.head.keepAlive): void {
    this.observe(route, status);
    this.conn.answer(status, message, keep);
  }

  /** A Host the connection's certificate does not name (RFC 9110 §15.5.20): answer 421. */
  answerIfMisdirected(hostname: string, keep = this.head.keepAlive): boolean {
    const certificate = this.conn.origin.certificate;
    if (certificate === undefined || certificateCovers(certificate, hostname)) return false;
    this.answer(421, `this connection's certificate does not name ${hostname}: open a connection for it`, '-', keep);
    return true;
  }

  /** Plain HTTP for a name served only over HTTPS: 308 to the same target over HTTPS. */
  redirect(hostname: string, keep = this.head.keepAlive): void {
    const port = this.serving.httpsPort?.();
    if (port === undefined) {
      this.answer(404, `${hostname} is served over HTTPS only, and this gateway has no HTTPS listener`, hostname, keep);
      return;
    }
    const location = `https://${hostname}${port === 443 ? '' : `:${port}`}${pathOf(this.head.target)}`;
    this.observe(hostname, 308);
    this.conn.answer(308, `served over HTTPS: ${location}`, keep, location);
  }

  forwardContext(upgrade: boolean): ForwardContext {
    return {
      clientAddress: plainAddress(this.conn.socket.remoteAddress),
      proto: this.conn.origin.scheme,
      port: this.conn.origin.port,
      upgrade,
    };
  }

  /**
   * The request failed before any response byte went to the client: answer with the status for
   * `err`. A body that went (partly) upstream cannot be read again, so then the connection ends.
   */
  fail(hostname: string, err: Error, bodyStarted: boolean, keep = this.head.keepAlive): void {
    const status = statusForError(err);
    if (status >= 502 && status !== 503)
      this.serving.upstreamFailures.warn(hostname, 'upstream request failed', {
        host: hostname,
        status,
        err: describeError(err),
      });
    this.observe(hostname, status);
    if (this.clientGone) return;
    const message = err instanceof HttpRequestError ? err.message : messageForStatus(status, hostname);
    this.conn.answer(status, message, !bodyStarted && keep);
  }

  /** The response had begun when it failed: nothing can be said any more, the connection ends. */
  cut(hostname: string): void {
    this.observe(hostname, 502);
    this.conn.socket.destroy();
  }

  /**
   * The one place where an error nobody expected ends a request: its connection closes and the
   * gateway goes on (no error on one connection may end the process).
   */
  abandon(err: unknown): void {
    this.serving.log.error('request failed unexpectedly; closing its connection', {
      host: this.hostname,
      err: describeError(err),
    });
    this.conn.socket.destroy();
  }
}

/** The path and query of a request target (origin-form as is, absolute-form without its authority). */
export function pathOf(target: string): string {
  if (target.startsWith('/')) return target;
  const absolute = /^https?:\/\/[^/?#]*(.*)$/i.exec(target);
  const rest = absolute?.[1] ?? '';
  return rest.startsWith('/') ? rest : `/${rest}`;
}
