/**
 * The public HTTP listener: a reverse proxy per request, routed by Host. node:http parses the
 * client side (limits, timeouts, 400/431); each request goes to the next agent of its route
 * over a keep-alive tunnel stream (idle-streams.ts), written and parsed by exchange.ts, so
 * requests reuse streams and the agent's backend connections. Upgrade requests (WebSocket) are
 * relayed as raw bytes after their head. Answers: 400, 404, 431, 502, 503, 504 (design: Routing).
 */
import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Clock } from '../../common/clock.ts';
import { describeError, isWebgwError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import { closeServer, formatHostPort, listen, plainAddress } from '../../common/net.ts';
import { relay } from '../../common/relay.ts';
import type { AgentLink } from '../agent-link.ts';
import type { GatewayLimits } from '../config.ts';
import type { Connector } from '../connector.ts';
import { exchange } from './exchange.ts';
import { forwardRequestHeaders, hostFromHeader, serializeRequestHead } from './headers.ts';
import { IdleStreams } from './idle-streams.ts';
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
  private localPort = 0;

  constructor(opts: HttpListenerOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ listener: 'http' });
    const { limits } = opts;
    this.server = createServer({
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headerTimeoutMs,
      requestTimeout: 0,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(limits.headerTimeoutMs / 4))),
      requireHostHeader: false,
      noDelay: true,
    });
    this.server.on('request', (req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    this.server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => this.onClientError(err, socket));
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

  async close(): Promise<void> {
    await closeServer(this.server);
    this.idle.destroyAll();
  }

  destroy(): void {
    this.server.closeAllConnections();
    this.server.close();
    this.idle.destroyAll();
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const started = this.opts.clock.now();
    const hostname = hostFromHeader(req.headers.host);
    // Only routes that exist become label values, so random Host headers cannot grow the metrics.
    let routeLabel = '-';
    res.on('finish', () => {
      this.opts.metrics.httpRequests.observe({ route: routeLabel, code: String(res.statusCode) }, (this.opts.clock.now() - started) / 1000);
    });
    if (!hostname) {
      this.answer(res, 400, 'missing or invalid Host header');
      return;
    }
    const status = this.opts.connector.status('http', hostname);
    if (status === 'unknown') {
      this.answer(res, 404, `no service is exposed as ${hostname} on this gateway`);
      return;
    }
    if (status === 'no-agent') {
      this.answer(res, 503, `no agent is connected for ${hostname}`);
      return;
    }
    routeLabel = hostname;
    this.forward(req, res, hostname, 1);
  }

  private forward(req: IncomingMessage, res: ServerResponse, hostname: string, attempt: number): void {
    const link = this.opts.connector.pick('http', hostname);
    if (!link) {
      this.answer(res, 503, messageForStatus(503, hostname));
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
      if (res.destroyed) {
        this.idle.put(`${hostname} ${agent.id}`, agent, stream);
        return;
      }
      const headers = forwardRequestHeaders(req.rawHeaders, { clientAddress: plainAddress(req.socket.remoteAddress), proto: 'http', upgrade: false });
      const outcome = await exchange({ req, res, stream, headers, responseTimeoutMs: this.opts.limits.responseTimeoutMs, clock: this.opts.clock });
      if (outcome.kind === 'done') {
        if (outcome.reusable) this.idle.put(`${hostname} ${agent.id}`, agent, stream);
        else stream.destroy();
        return;
      }
      if (outcome.responseStarted) {
        res.destroy();
        return;
      }
      // A keep-alive stream can be closed by the backend just as we reuse it (RFC 9112 §9.3.1):
      // retry requests that are safe to repeat and whose body we have not consumed.
      const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
      const stale = reused && !isWebgwError(outcome.error, 'WEBGW_ERR_TIMEOUT');
      if (stale && !hasBody && IDEMPOTENT.has(req.method ?? '') && attempt < MAX_ATTEMPTS && !res.destroyed) {
        this.forward(req, res, hostname, attempt + 1);
        return;
      }
      this.fail(res, hostname, outcome.error);
    }, (err: Error) => this.fail(res, hostname, err));
  }

  private fail(res: ServerResponse, hostname: string, err: Error): void {
    const status = statusForError(err);
    if (status >= 502 && status !== 503) this.log.warn('upstream request failed', { host: hostname, status, err: describeError(err) });
    if (res.headersSent) res.destroy();
    else if (!res.destroyed) this.answer(res, status, messageForStatus(status, hostname));
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => {});
    const hostname = hostFromHeader(req.headers.host);
    if (!hostname) {
      endRaw(socket, 400, 'missing or invalid Host header');
      return;
    }
    const status = this.opts.connector.status('http', hostname);
    if (status !== 'ok') {
      endRaw(socket, status === 'unknown' ? 404 : 503, messageForStatus(status === 'unknown' ? 404 : 503, hostname));
      return;
    }
    const client = { address: plainAddress(socket.remoteAddress), port: socket.remotePort ?? 0 };
    this.opts.connector.open({ protocol: 'http', hostname, port: this.localPort, client, local: { address: plainAddress(socket.localAddress), port: socket.localPort ?? 0 } }).then(({ stream }) => {
      if (socket.destroyed) {
        stream.destroy();
        return;
      }
      const headers = forwardRequestHeaders(req.rawHeaders, { clientAddress: client.address, proto: 'http', upgrade: true });
      stream.write(serializeRequestHead(req.method ?? 'GET', req.url ?? '/', req.httpVersion, headers));
      if (head.length > 0) stream.write(head);
      this.opts.metrics.activeConnections.inc({ protocol: 'http' });
      relay(socket, stream, () => this.opts.metrics.activeConnections.dec({ protocol: 'http' }));
    }, (err: Error) => {
      const code = statusForError(err);
      endRaw(socket, code, messageForStatus(code, hostname));
    });
  }

  private onClientError(err: Error & { code?: string }, socket: Duplex): void {
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    this.log.debug('bad HTTP request from client', { status, err: describeError(err) });
    if (!socket.writable || (socket as Socket).bytesWritten > 0) {
      socket.destroy();
      return;
    }
    endRaw(socket, status, STATUS_CODES[status] ?? 'bad request');
  }

  private answer(res: ServerResponse, status: number, message: string): void {
    const body = `${status} ${STATUS_CODES[status] ?? ''}: ${message}\n`;
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-webgw-error': String(status) });
    res.end(body);
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

function endRaw(socket: Duplex, status: number, message: string): void {
  const body = `${status} ${STATUS_CODES[status] ?? ''}: ${message}\n`;
  const head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
  socket.end(head + body, () => socket.destroy());
}
