/**
 * The public HTTP listener: a reverse proxy per request, routed by Host. client-connection.ts
 * reads the requests (limits, timeouts, 400/408/431); each request goes to the next agent of its
 * route over a keep-alive tunnel stream (idle-streams.ts), written and parsed by exchange.ts, so
 * requests reuse streams and the agent's backend connections. Upgrade requests (WebSocket) are
 * relayed as raw bytes after their head. Answers: 400, 404, 408, 431, 502, 503, 504 (design:
 * Routing).
 */
import { createServer, type AddressInfo, type Server } from 'node:net';
import type { Clock } from '../../common/clock.ts';
import { WebgwError, describeError, isWebgwError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import { closeServer, formatHostPort, listen, plainAddress } from '../../common/net.ts';
import { relay } from '../../common/relay.ts';
import type { AgentLink } from '../agent-link.ts';
import type { GatewayLimits } from '../config.ts';
import type { Connector } from '../connector.ts';
import { ClientConnection } from './client-connection.ts';
import { exchange } from './exchange.ts';
import { forwardRequestHeaders, hostFromHeader, serializeRequestHead } from './headers.ts';
import { IdleStreams } from './idle-streams.ts';
import type { RequestHead } from './request-parser.ts';
import type { GatewayMetrics } from '../metrics.ts';

export interface HttpListenerOptions {
  address: string;
  port: number;
  connector: Connector;
  limits: GatewayLimits;
  clock: Clock;
  logger: Logger;
  metrics: GatewayMetrics;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);
const MAX_ATTEMPTS = 3;
const MAX_IDLE_STREAMS_PER_ROUTE = 256;

export class HttpListener {
  private readonly opts: HttpListenerOptions;
  private readonly log: Logger;
  private readonly server: Server;
  /** Keep-alive streams per route and agent, so requests are balanced per request, not per stream. */
  private readonly idle = new IdleStreams(MAX_IDLE_STREAMS_PER_ROUTE);
  private readonly connections = new Set<ClientConnection>();
  private localPort = 0;

  constructor(opts: HttpListenerOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ listener: 'http' });
    const { limits } = opts;
    const connectionLimits = { maxHeaderBytes: limits.maxHeaderBytes, headerTimeoutMs: limits.headerTimeoutMs, keepAliveTimeoutMs: limits.keepAliveTimeoutMs };
    const hooks = {
      onRequest: (conn: ClientConnection, head: RequestHead) => this.onRequest(conn, head),
      onUpgrade: (conn: ClientConnection, head: RequestHead, rest: Buffer) => this.onUpgrade(conn, head, rest),
    };
    this.server = createServer({ noDelay: true }, (socket) => {
      const conn = new ClientConnection(socket, connectionLimits, opts.clock, hooks, this.log);
      this.connections.add(conn);
      socket.once('close', () => this.connections.delete(conn));
    });
  }

  async start(): Promise<AddressInfo> {
    const info = await listen(this.server, this.opts.port, this.opts.address);
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
  }

  /** Stops accepting; kept connections close now if idle, else after their current response. */
  async close(): Promise<void> {
    const closed = closeServer(this.server);
    for (const conn of this.connections) conn.closeWhenIdle();
    await closed;
    this.idle.destroyAll();
  }

  destroy(): void {
    for (const conn of this.connections) conn.socket.destroy();
    this.server.close();
    this.idle.destroyAll();
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
      conn.answer(status, message);
    };
    if (!hostname) {
      answer(400, 'missing or invalid Host header');
      return;
    }
    const status = this.opts.connector.status('http', hostname);
    if (status === 'unknown') {
      answer(404, messageForStatus(404, hostname));
      return;
    }
    if (status === 'no-agent') {
      answer(503, messageForStatus(503, hostname));
      return;
    }
    this.forward(conn, head, hostname, 1, observe);
  }

  private forward(conn: ClientConnection, head: RequestHead, hostname: string, attempt: number, observe: (route: string, status: number) => void): void {
    const link = this.opts.connector.pick('http', hostname);
    if (!link) {
      this.fail(conn, hostname, new WebgwError('WEBGW_ERR_NO_AGENT', 'no agent'), false, observe);
      return;
    }
    const key = `${hostname} ${link.id}`;
    const idle = this.idle.take(key);
    const streamReady = idle
      ? Promise.resolve({ stream: idle, agent: link, reused: true })
      : this.opts.connector.open({
        protocol: 'http', hostname, port: this.localPort,
        // A pooled stream serves many clients: the client is in X-Forwarded-For, not in OPEN.
        client: { address: '', port: 0 }, local: { address: '', port: this.localPort },
      }, link).then((opened) => ({ ...opened, reused: false }));
    streamReady.then(async ({ stream, agent, reused }) => {
      if (conn.socket.destroyed) {
        this.idle.put(`${hostname} ${agent.id}`, agent, stream);
        return;
      }
      const headers = forwardRequestHeaders(head.rawHeaders, { clientAddress: plainAddress(conn.socket.remoteAddress), proto: 'http', upgrade: false });
      const run = exchange({ client: conn.socket, request: head, stream, headers, keepClient: head.keepAlive, responseTimeoutMs: this.opts.limits.responseTimeoutMs, clock: this.opts.clock });
      conn.startBody(run.body);
      const outcome = await run.outcome;
      if (outcome.kind === 'done') {
        observe(hostname, outcome.status);
        if (outcome.reusable) this.idle.put(`${hostname} ${agent.id}`, agent, stream);
        else stream.destroy();
        conn.finishRequest(outcome.keepClient);
        return;
      }
      if (outcome.responseStarted) {
        observe(hostname, 502);
        conn.socket.destroy();
        return;
      }
      // A keep-alive stream can be closed by the backend just as we reuse it (RFC 9112 §9.3.1):
      // retry requests that are safe to repeat and carry no body.
      const stale = reused && !isWebgwError(outcome.error, 'WEBGW_ERR_TIMEOUT');
      if (stale && !head.framing && IDEMPOTENT.has(head.method) && attempt < MAX_ATTEMPTS && !conn.socket.destroyed) {
        this.forward(conn, head, hostname, attempt + 1, observe);
        return;
      }
      this.fail(conn, hostname, outcome.error, true, observe);
    }, (err: Error) => this.fail(conn, hostname, err, false, observe));
  }

  private fail(conn: ClientConnection, hostname: string, err: Error, bodyStarted: boolean, observe: (route: string, status: number) => void): void {
    const status = statusForError(err);
    if (status >= 502 && status !== 503) this.log.warn('upstream request failed', { host: hostname, status, err: describeError(err) });
    observe(hostname, status);
    if (conn.socket.destroyed) return;
    // A body that went (partly) upstream cannot be read again: answer, then close.
    conn.answer(status, messageForStatus(status, hostname), !bodyStarted);
  }

  private onUpgrade(conn: ClientConnection, head: RequestHead, rest: Buffer): void {
    const socket = conn.socket;
    const hostname = hostFromHeader(head.host);
    if (!hostname) {
      conn.answer(400, 'missing or invalid Host header', false);
      return;
    }
    const status = this.opts.connector.status('http', hostname);
    if (status !== 'ok') {
      const code = status === 'unknown' ? 404 : 503;
      conn.answer(code, messageForStatus(code, hostname), false);
      return;
    }
    const client = { address: plainAddress(socket.remoteAddress), port: socket.remotePort ?? 0 };
    this.opts.connector.open({ protocol: 'http', hostname, port: this.localPort, client, local: { address: plainAddress(socket.localAddress), port: socket.localPort ?? 0 } }).then(({ stream }) => {
      if (socket.destroyed) {
        stream.destroy();
        return;
      }
      const headers = forwardRequestHeaders(head.rawHeaders, { clientAddress: client.address, proto: 'http', upgrade: true });
      stream.write(serializeRequestHead(head.method, head.target, head.version, headers));
      if (rest.length > 0) stream.write(rest);
      this.opts.metrics.activeConnections.inc({ protocol: 'http' });
      relay(socket, stream, () => this.opts.metrics.activeConnections.dec({ protocol: 'http' }));
    }, (err: Error) => {
      const code = statusForError(err);
      conn.answer(code, messageForStatus(code, hostname), false);
    });
  }
}

export function statusForError(err: unknown): number {
  if (isWebgwError(err, 'WEBGW_ERR_NO_ROUTE')) return 404;
  if (isWebgwError(err, 'WEBGW_ERR_NO_AGENT')) return 503;
  if (isWebgwError(err, 'WEBGW_ERR_TIMEOUT')) return 504;
  return 502;
}

function messageForStatus(status: number, hostname: string): string {
  switch (status) {
    case 404: return `no service is exposed as ${hostname} on this gateway`;
    case 503: return `no agent is connected for ${hostname}`;
    case 504: return `the service behind ${hostname} did not answer in time`;
    default: return `the service behind ${hostname} failed to answer`;
  }
}
