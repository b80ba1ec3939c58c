/**
 * The public HTTP listener: a reverse proxy per request, routed by Host, for plain HTTP
 * connections it accepts and HTTPS connections the TLS listener terminated (serveHttps). Plain
 * HTTP for a name served only over TLS (HTTPS, or a TLS route) is redirected there (308). client-connection.ts
 * reads the requests (limits, timeouts, 400/408/431); each request goes to the next agent of its
 * route over a keep-alive tunnel stream (idle-streams.ts), written and parsed by exchange.ts, so
 * requests reuse streams and the agent's backend connections. Upgrade requests (WebSocket) are
 * relayed as raw bytes after their head. Answers: 400, 404, 408, 431, 502, 503, 504
 * (docs/architecture.md, Routing at the gateway).
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Clock } from '../../common/clock.ts';
import { WebgwError, describeError } from '../../common/errors.ts';
import { Lifecycle } from '../../common/lifecycle.ts';
import type { Logger } from '../../common/log.ts';
import { LogThrottle } from '../../common/log-throttle.ts';
import { closeServer, formatHostPort, listen, plainAddress } from '../../common/net.ts';
import { relay } from '../../common/relay.ts';
import type { TunnelStream } from '../../tunnel/stream.ts';
import type { AgentLink } from '../agent-link.ts';
import { WELL_KNOWN_ACME_PREFIX } from '../../common/acme-challenge.ts';
import type { AcmeChallenges } from '../acme-challenges.ts';
import { certificateCovers, type ServedCertificate } from '../certificate-store.ts';
import type { GatewayLimits } from '../config.ts';
import type { ClientLimiter } from '../client-limiter.ts';
import { ClientSockets } from '../client-sockets.ts';
import type { Connector } from '../connector.ts';
import { ClientConnection, type ConnectionOrigin } from './client-connection.ts';
import { exchange } from './exchange.ts';
import { forwardRequestHeaders, headerLines, hostFromHeader, type ForwardContext } from './headers.ts';
import { IdleStreams, poolKey, takeOrOpen } from './idle-streams.ts';
import { mayRetry } from './retry.ts';
import { HttpRequestError, type RequestHead } from '../../common/http/request-parser.ts';
import { messageForStatus, statusForError } from './statuses.ts';
import { Http2Frontend } from '../http2/frontend.ts';
import { H2cSessions } from '../http2/h2c-sessions.ts';
import { http2RequestHeaders } from '../http2/headers.ts';
import { exchangeH2c } from './to-h2c.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { RouteKind } from '../route-table.ts';

export interface HttpListenerOptions {
  /** Where plain HTTP is accepted; without it, the listener serves only HTTPS (serveHttps). */
  address?: string;
  port?: number;
  /** The public HTTPS port, for redirects; undefined while there is no TLS listener. */
  httpsPort?: () => number | undefined;
  /** Bind with SO_REUSEPORT (common/net.ts listen). */
  reusePort?: boolean;
  /** ACME HTTP-01 answers the controller handed over, served on plain HTTP before any route. */
  acmeChallenges?: AcmeChallenges;
  connector: Connector;
  clients: ClientLimiter;
  limits: GatewayLimits;
  clock: Clock;
  logger: Logger;
  metrics: GatewayMetrics;
}

const MAX_IDLE_STREAMS_PER_ROUTE = 256;

export class HttpListener {
  private readonly opts: HttpListenerOptions;
  private readonly log: Logger;
  /** Failing backends are a tenant's matter: one line per host and interval. */
  private readonly upstreamFailures: LogThrottle;
  private readonly server: Server;
  /** Keep-alive streams per route and agent, so requests are balanced per request, not per stream. */
  private readonly idle = new IdleStreams(MAX_IDLE_STREAMS_PER_ROUTE);
  private readonly connections = new Set<ClientConnection>();
  private readonly sockets: ClientSockets;
  private readonly life = new Lifecycle();
  /** HTTPS connections that negotiated HTTP/2, and sessions to backends that speak it. */
  private readonly http2: Http2Frontend;
  private readonly h2c: H2cSessions;
  private localPort = 0;

  constructor(opts: HttpListenerOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ listener: 'http' });
    this.upstreamFailures = new LogThrottle(this.log, opts.clock);
    this.h2c = new H2cSessions({
      connector: opts.connector,
      clock: opts.clock,
      maxHeaderBytes: opts.limits.maxHeaderBytes,
    });
    this.http2 = new Http2Frontend({
      ...opts,
      logger: this.log,
      idle: this.idle,
      h2c: this.h2c,
      upstreamFailures: this.upstreamFailures,
    });
    const { limits } = opts;
    const connectionLimits = {
      maxHeaderBytes: limits.maxHeaderBytes,
      headerTimeoutMs: limits.headerTimeoutMs,
      keepAliveTimeoutMs: limits.keepAliveTimeoutMs,
    };
    const hooks = {
      onRequest: (conn: ClientConnection, head: RequestHead) => this.onRequest(conn, head),
      onUpgrade: (conn: ClientConnection, head: RequestHead, rest: Buffer) => this.onUpgrade(conn, head, rest),
    };
    this.accept = (socket, origin) => {
      const conn = new ClientConnection(socket, origin, connectionLimits, opts.clock, hooks, this.log);
      this.connections.add(conn);
      socket.once('close', () => this.connections.delete(conn));
    };
    this.sockets = new ClientSockets(opts.clients, 'http');
    this.server = createServer({ noDelay: true }, (socket) => {
      if (this.sockets.admit(socket)) this.accept(socket, { scheme: 'http', port: this.localPort });
    });
  }

  private readonly accept: (socket: Socket, origin: ConnectionOrigin) => void;

  /** A connection the TLS listener terminated with `certificate` (already admitted there). */
  serveHttps(socket: TLSSocket, port: number, certificate: ServedCertificate): void {
    if (socket.alpnProtocol === 'h2') this.http2.serve(socket, { port, certificate });
    else this.accept(socket, { scheme: 'https', port, certificate });
  }

  async start(): Promise<AddressInfo> {
    if (this.opts.port === undefined) throw new WebgwError('WEBGW_ERR_CONFIG_INVALID', 'the HTTP listener has no port');
    const info = await listen(this.server, this.opts.port, this.opts.address ?? '0.0.0.0', {
      reusePort: this.opts.reusePort,
    });
    this.localPort = info.port;
    this.log.info('HTTP listener ready', { address: formatHostPort(info.address, info.port) });
    return info;
  }

  /**
   * The agent drains: its idle keep-alive streams go now, busy ones after their response. Once
   * it is gone, its pools go too.
   */
  dropAgent(link: AgentLink): void {
    this.idle.dropAgent(link);
    this.h2c.dropAgent(link);
  }

  /** Stops accepting; kept connections close now if idle, else after their current response. */
  close(): Promise<void> {
    return this.life.close(async () => {
      const closed = closeServer(this.server);
      for (const conn of this.connections) conn.closeWhenIdle();
      await Promise.all([closed, this.http2.close()]);
      this.idle.destroyAll();
      this.h2c.destroyAll();
    });
  }

  destroy(): void {
    this.life.destroy(() => {
      this.sockets.destroyAll();
      for (const conn of this.connections) conn.socket.destroy();
      this.http2.destroy();
      this.server.close();
      this.idle.destroyAll();
      this.h2c.destroyAll();
    });
  }

  private onRequest(conn: ClientConnection, head: RequestHead): void {
    const started = this.opts.clock.now();
    const hostname = hostFromHeader(head.host);
    // Only routes that exist become label values, so random Host headers cannot grow the metrics.
    const observe = (route: string, status: number): void => {
      this.opts.metrics.httpRequests.observe({ route, code: String(status) }, (this.opts.clock.now() - started) / 1000);
    };
    const answer = (status: number, message: string, route = '-'): void => {
      observe(route, status);
      conn.answer(status, message, head.keepAlive);
    };
    if (!hostname) {
      answer(400, 'missing or invalid Host header');
      return;
    }
    if (
      conn.origin.scheme === 'http' &&
      head.target.startsWith(WELL_KNOWN_ACME_PREFIX) &&
      this.answerAcme(conn, head, hostname, observe)
    )
      return;
    if (this.misdirected(conn, hostname)) {
      answer(421, `this connection's certificate does not name ${hostname}: open a connection for it`);
      return;
    }
    void this.opts.connector
      .awaitRoute(routeKinds(conn), hostname)
      .then(({ kind, status }) => {
        if (conn.socket.destroyed) return;
        if (status === 'unknown') answer(404, messageForStatus(404, hostname));
        else if (kind !== 'http' && conn.origin.scheme === 'http')
          this.redirect(conn, head, hostname, observe, head.keepAlive);
        else if (status === 'no-agent') answer(503, messageForStatus(503, hostname));
        else this.forward(conn, head, hostname, 1, observe);
      })
      .catch((err: unknown) => this.abandon(conn, hostname, err));
  }

  /**
   * An ACME validation (RFC 8555 §8.3): the key authorization the controller handed over for this
   * token and Host, before routing and before the HTTPS redirect (the name may have no
   * certificate yet). False when this gateway holds no such answer: the request is routed.
   */
  private answerAcme(
    conn: ClientConnection,
    head: RequestHead,
    hostname: string,
    observe: (route: string, status: number) => void,
  ): boolean {
    if (head.method !== 'GET' && head.method !== 'HEAD') return false;
    const token = head.target.slice(WELL_KNOWN_ACME_PREFIX.length);
    const keyAuthorization = this.opts.acmeChallenges?.answer(token, hostname);
    if (keyAuthorization === undefined) return false;
    observe('acme-challenge', 200);
    conn.respond(
      200,
      head.method === 'HEAD' ? '' : keyAuthorization,
      'application/octet-stream',
      head.keepAlive,
      Buffer.byteLength(keyAuthorization),
    );
    return true;
  }

  /** A Host the connection's certificate does not name (RFC 9110 §15.5.20): 421. */
  private misdirected(conn: ClientConnection, hostname: string): boolean {
    return conn.origin.certificate !== undefined && !certificateCovers(conn.origin.certificate, hostname);
  }

  /** Plain HTTP for a name served only over HTTPS: 308 to the same target over HTTPS. */
  private redirect(
    conn: ClientConnection,
    head: RequestHead,
    hostname: string,
    observe: (route: string, status: number) => void,
    keep = true,
  ): void {
    const port = this.opts.httpsPort?.();
    if (port === undefined) {
      observe(hostname, 404);
      conn.answer(404, `${hostname} is served over HTTPS only, and this gateway has no HTTPS listener`, keep);
      return;
    }
    const location = `https://${hostname}${port === 443 ? '' : `:${port}`}${pathOf(head.target)}`;
    observe(hostname, 308);
    conn.answer(308, `served over HTTPS: ${location}`, keep, location);
  }

  private forward(
    conn: ClientConnection,
    head: RequestHead,
    hostname: string,
    attempt: number,
    observe: (route: string, status: number) => void,
  ): void {
    const kind = routeKinds(conn)[0];
    const link = this.opts.connector.pick(kind, hostname);
    if (!link) {
      this.fail(conn, head, hostname, new WebgwError('WEBGW_ERR_NO_AGENT', 'no agent'), false, observe);
      return;
    }
    if (link.speaksH2c(hostname)) {
      this.forwardToH2c(conn, head, hostname, link, observe).catch((err: unknown) => this.abandon(conn, hostname, err));
      return;
    }
    takeOrOpen(this.idle, this.opts.connector, link, hostname, conn.origin.port, kind)
      .then(
        ({ stream, reused }) => this.runExchange(conn, head, hostname, attempt, observe, stream, link, reused),
        (err: Error) => this.fail(conn, head, hostname, err, false, observe),
      )
      .catch((err: unknown) => this.abandon(conn, hostname, err));
  }

  private async runExchange(
    conn: ClientConnection,
    head: RequestHead,
    hostname: string,
    attempt: number,
    observe: (route: string, status: number) => void,
    stream: TunnelStream,
    agent: AgentLink,
    reused: boolean,
  ): Promise<void> {
    if (conn.socket.destroyed) {
      this.idle.put(poolKey(hostname, agent), agent, stream);
      return;
    }
    const headers = forwardRequestHeaders(head.rawHeaders, this.forwardContext(conn, false));
    const run = exchange({
      client: conn.socket,
      request: head,
      stream,
      headers,
      keepClient: head.keepAlive,
      responseTimeoutMs: this.opts.limits.responseTimeoutMs,
      clock: this.opts.clock,
    });
    conn.startBody(run.body);
    const outcome = await run.outcome;
    if (outcome.kind === 'done') {
      observe(hostname, outcome.status);
      if (outcome.reusable) this.idle.put(poolKey(hostname, agent), agent, stream);
      else stream.destroy();
      conn.finishRequest(outcome.keepClient);
      return;
    }
    if (outcome.kind === 'switched')
      throw new WebgwError('WEBGW_ERR_BACKEND', 'backend switched protocols on a plain request');
    if (outcome.responseStarted) {
      observe(hostname, 502);
      conn.socket.destroy();
      return;
    }
    if (
      mayRetry({ reused, error: outcome.error, method: head.method, hasBody: head.framing !== undefined, attempt }) &&
      !conn.socket.destroyed
    ) {
      this.forward(conn, head, hostname, attempt + 1, observe);
      return;
    }
    this.fail(conn, head, hostname, outcome.error, true, observe);
  }

  /** A backend that speaks HTTP/2 (grant h2c): the request goes over a pooled HTTP/2 session. */
  private async forwardToH2c(
    conn: ClientConnection,
    head: RequestHead,
    hostname: string,
    link: AgentLink,
    observe: (route: string, status: number) => void,
  ): Promise<void> {
    const kind = routeKinds(conn)[0];
    const h2Head = {
      method: head.method,
      path: pathOf(head.target),
      authority: head.host ?? hostname,
      fields: withoutHost(head.rawHeaders),
    };
    let upstream;
    try {
      const headers = http2RequestHeaders(h2Head, this.forwardContext(conn, false), conn.origin.scheme);
      upstream = await this.h2c.request({
        link,
        hostname,
        kind,
        port: conn.origin.port,
        headers,
        endStream: head.framing === undefined,
      });
    } catch (err) {
      this.fail(conn, head, hostname, err as Error, false, observe);
      return;
    }
    if (conn.socket.destroyed) {
      upstream.close();
      return;
    }
    const run = exchangeH2c(
      conn.socket,
      head,
      upstream,
      head.keepAlive,
      this.opts.limits.responseTimeoutMs,
      this.opts.clock,
    );
    conn.startBody(run.body);
    const outcome = await run.outcome;
    if (outcome.kind === 'done') {
      observe(hostname, outcome.status);
      conn.finishRequest(outcome.keepClient);
    } else if (outcome.responseStarted) {
      observe(hostname, 502);
      conn.socket.destroy();
    } else {
      this.fail(conn, head, hostname, outcome.error, true, observe);
    }
  }

  /**
   * Last resort for an error nobody expected on one request: that connection ends, the gateway
   * goes on (no error on one connection may end the process).
   */
  private abandon(conn: ClientConnection, hostname: string, err: unknown): void {
    this.log.error('request failed unexpectedly; closing its connection', { host: hostname, err: describeError(err) });
    conn.socket.destroy();
  }

  private forwardContext(conn: ClientConnection, upgrade: boolean): ForwardContext {
    return {
      clientAddress: plainAddress(conn.socket.remoteAddress),
      proto: conn.origin.scheme,
      port: conn.origin.port,
      upgrade,
    };
  }

  private fail(
    conn: ClientConnection,
    head: RequestHead,
    hostname: string,
    err: Error,
    bodyStarted: boolean,
    observe: (route: string, status: number) => void,
  ): void {
    const status = statusForError(err);
    if (status >= 502 && status !== 503)
      this.upstreamFailures.warn(hostname, 'upstream request failed', {
        host: hostname,
        status,
        err: describeError(err),
      });
    observe(hostname, status);
    if (conn.socket.destroyed) return;
    // A body that went (partly) upstream cannot be read again: answer, then close.
    conn.answer(
      status,
      err instanceof HttpRequestError ? err.message : messageForStatus(status, hostname),
      !bodyStarted && head.keepAlive,
    );
  }

  /**
   * An Upgrade request (WebSocket): the head goes to the backend, and the client's connection
   * becomes a raw relay only once the backend answered 101. Bytes the client sent after its head
   * wait until then; any other answer is forwarded as a response and the connection ends, so a
   * declined upgrade can never carry the client's next request to this backend.
   */
  private onUpgrade(conn: ClientConnection, head: RequestHead, rest: Buffer): void {
    const socket = conn.socket;
    const hostname = hostFromHeader(head.host);
    if (!hostname) {
      conn.answer(400, 'missing or invalid Host header', false);
      return;
    }
    if (this.misdirected(conn, hostname)) {
      conn.answer(421, `this connection's certificate does not name ${hostname}: open a connection for it`, false);
      return;
    }
    const [kind] = routeKinds(conn);
    const status = this.opts.connector.status(kind, hostname);
    if (status === 'unknown' && kind === 'http' && this.opts.connector.status('https', hostname) !== 'unknown') {
      this.redirect(conn, head, hostname, () => {}, false);
      return;
    }
    if (status !== 'ok') {
      const code = status === 'unknown' ? 404 : 503;
      conn.answer(code, messageForStatus(code, hostname), false);
      return;
    }
    const client = { address: plainAddress(socket.remoteAddress), port: socket.remotePort ?? 0 };
    this.opts.connector
      .open(
        {
          protocol: 'http',
          hostname,
          port: conn.origin.port,
          client,
          local: { address: plainAddress(socket.localAddress), port: socket.localPort ?? 0 },
        },
        undefined,
        kind,
      )
      .then(
        ({ stream }) => this.runUpgrade(conn, head, hostname, stream, rest),
        (err: Error) => {
          const code = statusForError(err);
          conn.answer(code, messageForStatus(code, hostname), false);
        },
      )
      .catch((err: unknown) => this.abandon(conn, hostname, err));
  }

  private async runUpgrade(
    conn: ClientConnection,
    head: RequestHead,
    hostname: string,
    stream: TunnelStream,
    rest: Buffer,
  ): Promise<void> {
    const socket = conn.socket;
    if (socket.destroyed) {
      stream.destroy();
      return;
    }
    const headers = forwardRequestHeaders(head.rawHeaders, this.forwardContext(conn, true));
    const run = exchange({
      client: socket,
      request: head,
      stream,
      headers,
      keepClient: false,
      responseTimeoutMs: this.opts.limits.responseTimeoutMs,
      clock: this.opts.clock,
    });
    run.body.end(); // an upgrade request has no body (request-parser.ts)
    const outcome = await run.outcome;
    if (outcome.kind === 'switched') {
      if (socket.destroyed) {
        stream.destroy();
        return;
      }
      const { head: answer } = outcome;
      socket.write(
        `HTTP/1.1 101 ${answer.statusMessage || 'Switching Protocols'}\r\n${headerLines(answer.rawHeaders)}\r\n`,
        'latin1',
      );
      if (outcome.rest.length > 0) socket.write(outcome.rest);
      if (rest.length > 0) stream.write(rest);
      this.opts.metrics.activeConnections.inc({ protocol: 'http' });
      relay(socket, stream, () => this.opts.metrics.activeConnections.dec({ protocol: 'http' }));
      stream.resume();
      return;
    }
    stream.destroy();
    if (outcome.kind === 'done') {
      conn.finishRequest(false);
      return;
    }
    if (outcome.responseStarted) {
      socket.destroy();
      return;
    }
    const code = statusForError(outcome.error);
    conn.answer(code, messageForStatus(code, hostname), false);
  }
}

/**
 * The routes a request may take: on HTTPS the https route only; on plain HTTP the http route,
 * else one served over TLS (HTTPS at the gateway, TLS terminated at the gateway or passed
 * through, perhaps to an agent that terminates it), to redirect to it.
 */
function routeKinds(conn: ClientConnection): [RouteKind, ...RouteKind[]] {
  return conn.origin.scheme === 'https' ? ['https'] : ['http', 'https', 'tls-terminated', 'tls'];
}

function withoutHost(rawHeaders: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2)
    if ((rawHeaders[i] as string).toLowerCase() !== 'host')
      out.push(rawHeaders[i] as string, rawHeaders[i + 1] as string);
  return out;
}

/** The path and query of a request target (origin-form as is, absolute-form without its authority). */
function pathOf(target: string): string {
  if (target.startsWith('/')) return target;
  const absolute = /^https?:\/\/[^/?#]*(.*)$/i.exec(target);
  const rest = absolute?.[1] ?? '';
  return rest.startsWith('/') ? rest : `/${rest}`;
}
