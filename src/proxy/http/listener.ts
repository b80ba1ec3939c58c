/**
 * The public HTTP listener: accepts plain HTTP connections, takes the HTTPS connections the TLS
 * listener terminated (serveHttps; HTTP/2 ones go to http2/frontend.ts), and hands every request
 * client-connection.ts reads (limits, timeouts, 400/408/431) to its story: serve-request.ts, or
 * serve-upgrade.ts for an Upgrade. It owns what requests share: the keep-alive streams to agents
 * (idle-streams.ts), the HTTP/2 sessions to h2c backends, and the lifecycle of its connections
 * (docs/architecture.md, Routing at the gateway).
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Clock } from '../../common/clock.ts';
import { WebgwError } from '../../common/errors.ts';
import { Lifecycle } from '../../common/lifecycle.ts';
import type { Logger } from '../../common/log.ts';
import { LogThrottle } from '../../common/log-throttle.ts';
import { closeServer, formatHostPort, listen } from '../../common/net.ts';
import type { RequestHead } from '../../common/http/request-parser.ts';
import type { AgentLink } from '../agent-link.ts';
import type { AcmeChallenges } from '../acme-challenges.ts';
import type { ServedCertificate } from '../certificate-store.ts';
import type { GatewayLimits } from '../config.ts';
import type { ClientLimiter } from '../client-limiter.ts';
import { ClientSockets } from '../client-sockets.ts';
import type { Connector } from '../connector.ts';
import { Http2Frontend } from '../http2/frontend.ts';
import { H2cSessions } from '../http2/h2c-sessions.ts';
import type { GatewayMetrics } from '../metrics.ts';
import { ClientConnection, type ConnectionOrigin } from './client-connection.ts';
import { IdleStreams } from './idle-streams.ts';
import type { HttpServing } from './request-scope.ts';
import { serveRequest } from './serve-request.ts';
import { serveUpgrade } from './serve-upgrade.ts';

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
    const serving: HttpServing = {
      connector: opts.connector,
      idle: this.idle,
      h2c: this.h2c,
      limits,
      clock: opts.clock,
      metrics: opts.metrics,
      log: this.log,
      upstreamFailures: this.upstreamFailures,
      ...(opts.acmeChallenges ? { acmeChallenges: opts.acmeChallenges } : {}),
      ...(opts.httpsPort ? { httpsPort: opts.httpsPort } : {}),
    };
    const hooks = {
      onRequest: (conn: ClientConnection, head: RequestHead) => void serveRequest(serving, conn, head),
      onUpgrade: (conn: ClientConnection, head: RequestHead, rest: Buffer) =>
        void serveUpgrade(serving, conn, head, rest),
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
}
