/**
 * HTTP/2 for clients of HTTPS routes (ALPN h2, tls-terminator.ts): node:http2 reads the frames,
 * and each request is routed by :authority like an HTTP/1.1 one (http/listener.ts): 400 for a
 * malformed head, 421 for a name the connection's certificate does not cover, 404/503 as there.
 * Each request goes to the next agent of its route; what the agent's backend speaks decides how:
 * HTTP/1.1 over a pooled keep-alive tunnel stream (to-http1.ts, the same pool as HTTP/1.1
 * clients), or HTTP/2 over a pooled backend session (grant h2c: to-h2c.ts, h2c-sessions.ts),
 * which is what gRPC needs.
 *
 * Bounds per connection: MAX_STREAMS concurrent streams, request heads of maxHeaderBytes (and
 * at most MAX_HEADER_PAIRS fields), SESSION_MEMORY_MB of nghttp2 state, and node's defences
 * against floods of invalid frames and rejected or reset streams (CVE-2023-44487); a connection
 * with no open stream for keepAliveTimeoutMs is closed with GOAWAY.
 */
import { constants, createServer, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Clock } from '../../common/clock.ts';
import { WebgwError, describeError } from '../../common/errors.ts';
import { Lifecycle } from '../../common/lifecycle.ts';
import type { Logger } from '../../common/log.ts';
import type { LogThrottle } from '../../common/log-throttle.ts';
import { plainAddress } from '../../common/net.ts';
import type { AgentLink } from '../agent-link.ts';
import { certificateCovers, type ServedCertificate } from '../certificate-store.ts';
import type { GatewayLimits } from '../config.ts';
import type { Connector } from '../connector.ts';
import type { GatewayMetrics } from '../metrics.ts';
import { hostFromHeader } from '../http/headers.ts';
import { poolKey, takeOrOpen, type IdleStreams } from '../http/idle-streams.ts';
import { mayRetry } from '../http/retry.ts';
import { messageForStatus, statusForError } from '../http/statuses.ts';
import { http1RequestFields, http2RequestHeaders, readRequestHead, type Http2RequestHead } from './headers.ts';
import type { H2cSessions } from './h2c-sessions.ts';
import { exchangeHttp1 } from './to-http1.ts';
import { relayHttp2 } from './to-h2c.ts';

export const MAX_STREAMS = 100;
const MAX_HEADER_PAIRS = 128;
const SESSION_MEMORY_MB = 8;

export interface Http2Origin {
  /** The public port (X-Forwarded-Port). */
  port: number;
  certificate: ServedCertificate;
}

export interface Http2FrontendOptions {
  connector: Connector;
  /** Keep-alive tunnel streams to HTTP/1.1 backends, shared with the HTTP/1.1 listener. */
  idle: IdleStreams;
  h2c: H2cSessions;
  limits: GatewayLimits;
  clock: Clock;
  logger: Logger;
  upstreamFailures: LogThrottle;
  metrics: GatewayMetrics;
}

interface Request {
  stream: ServerHttp2Stream;
  head: Http2RequestHead;
  hostname: string;
  origin: Http2Origin;
  clientAddress: string;
  observe(route: string, status: number): void;
}

export class Http2Frontend {
  private readonly opts: Http2FrontendOptions;
  private readonly server: Http2Server;
  private readonly sessions = new Map<
    ServerHttp2Session,
    { origin: Http2Origin; clientAddress: string; open: number }
  >();
  /** The connection being handed over: node emits 'session' while `serve` runs. */
  private handingOver: { origin: Http2Origin; clientAddress: string } | undefined;
  private readonly life = new Lifecycle();

  constructor(opts: Http2FrontendOptions) {
    this.opts = opts;
    const { limits } = opts;
    this.server = createServer({
      settings: { maxConcurrentStreams: MAX_STREAMS, maxHeaderListSize: limits.maxHeaderBytes },
      maxHeaderListPairs: MAX_HEADER_PAIRS,
      maxSessionMemory: SESSION_MEMORY_MB,
      maxSessionInvalidFrames: 100,
      maxSessionRejectedStreams: 100,
    });
    this.server.on('session', (session: ServerHttp2Session) => this.onSession(session));
    this.server.on('stream', (stream: ServerHttp2Stream, _headers: unknown, _flags: number, rawHeaders: string[]) =>
      this.onStream(stream, rawHeaders),
    );
  }

  /** A TLS connection that negotiated h2 (already admitted by the client limiter). */
  serve(socket: TLSSocket, origin: Http2Origin): void {
    if (this.life.stopping) {
      socket.destroy();
      return;
    }
    this.handingOver = { origin, clientAddress: plainAddress(socket.remoteAddress) };
    try {
      this.server.emit('connection', socket);
    } finally {
      this.handingOver = undefined;
    }
  }

  /** GOAWAY on every connection: open streams finish, no new ones start. */
  close(): Promise<void> {
    return this.life.close(async () => {
      const sessions = [...this.sessions.keys()];
      await Promise.all(sessions.map((session) => new Promise<void>((resolve) => session.close(resolve))));
    });
  }

  destroy(): void {
    this.life.destroy(() => {
      for (const session of this.sessions.keys()) session.destroy();
    });
  }

  private onSession(session: ServerHttp2Session): void {
    const handover = this.handingOver;
    if (!handover) {
      session.destroy();
      return;
    }
    const state = { ...handover, open: 0 };
    this.sessions.set(session, state);
    session.on('error', (err) =>
      this.opts.logger.debug('HTTP/2 connection failed', { remote: handover.clientAddress, err: describeError(err) }),
    );
    session.once('close', () => this.sessions.delete(session));
    session.setTimeout(this.opts.limits.keepAliveTimeoutMs, () => {
      if (state.open === 0) session.close();
    });
    session.on('stream', (stream: ServerHttp2Stream) => {
      state.open += 1;
      stream.once('close', () => {
        state.open -= 1;
      });
    });
  }

  private onStream(stream: ServerHttp2Stream, rawHeaders: string[]): void {
    const state = this.sessions.get(stream.session as ServerHttp2Session);
    stream.on('error', () => {}); // a reset stream ends its request ('close'), nothing else
    if (!state) {
      stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const started = this.opts.clock.now();
    const observe = (route: string, status: number): void => {
      this.opts.metrics.httpRequests.observe({ route, code: String(status) }, (this.opts.clock.now() - started) / 1000);
    };
    const head = readRequestHead(rawHeaders);
    if (typeof head === 'string') {
      answer(stream, 400, head, observe);
      return;
    }
    const hostname = hostFromHeader(head.authority);
    if (!hostname) {
      answer(stream, 400, 'missing or invalid :authority', observe);
      return;
    }
    if (!certificateCovers(state.origin.certificate, hostname)) {
      answer(stream, 421, `this connection's certificate does not name ${hostname}: open a connection for it`, observe);
      return;
    }
    const request: Request = {
      stream,
      head,
      hostname,
      origin: state.origin,
      clientAddress: state.clientAddress,
      observe,
    };
    void this.opts.connector
      .awaitRoute(['https'], hostname)
      .then(({ status }) => {
        if (stream.destroyed) return;
        if (status === 'unknown') answer(stream, 404, messageForStatus(404, hostname), observe);
        else if (status === 'no-agent') answer(stream, 503, messageForStatus(503, hostname), observe);
        else return this.forward(request, 1);
        return undefined;
      })
      .catch((err: unknown) => {
        this.opts.logger.error('HTTP/2 request failed unexpectedly; resetting its stream', {
          host: hostname,
          err: describeError(err),
        });
        if (!stream.destroyed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      });
  }

  private async forward(request: Request, attempt: number): Promise<void> {
    const link = this.opts.connector.pick('https', request.hostname);
    if (!link) {
      this.fail(request, new WebgwError('WEBGW_ERR_NO_AGENT', 'no agent'));
      return;
    }
    if (link.speaksH2c(request.hostname)) await this.forwardHttp2(request, link);
    else await this.forwardHttp1(request, link, attempt);
  }

  private async forwardHttp1(request: Request, link: AgentLink, attempt: number): Promise<void> {
    const { stream: client, head, hostname } = request;
    const key = poolKey(hostname, link);
    let stream;
    let reused;
    try {
      ({ stream, reused } = await takeOrOpen(
        this.opts.idle,
        this.opts.connector,
        link,
        hostname,
        request.origin.port,
        'https',
      ));
    } catch (err) {
      this.fail(request, err);
      return;
    }
    if (client.destroyed) {
      this.opts.idle.put(key, link, stream);
      return;
    }
    const fields = http1RequestFields(head, {
      clientAddress: request.clientAddress,
      proto: 'https',
      port: request.origin.port,
      upgrade: false,
    });
    const outcome = await exchangeHttp1({
      client,
      stream,
      method: head.method,
      path: head.path,
      fields,
      responseTimeoutMs: this.opts.limits.responseTimeoutMs,
      clock: this.opts.clock,
    });
    if (outcome.kind === 'done') {
      request.observe(hostname, outcome.status);
      if (outcome.reusable) this.opts.idle.put(key, link, stream);
      else stream.destroy();
      return;
    }
    if (outcome.responseStarted) {
      request.observe(hostname, 502);
      return;
    }
    if (
      mayRetry({ reused, error: outcome.error, method: head.method, hasBody: !client.endAfterHeaders, attempt }) &&
      !client.destroyed
    ) {
      await this.forward(request, attempt + 1);
      return;
    }
    this.fail(request, outcome.error);
  }

  private async forwardHttp2(request: Request, link: AgentLink): Promise<void> {
    const { stream: client, head, hostname } = request;
    let upstream;
    try {
      const headers = http2RequestHeaders(
        head,
        { clientAddress: request.clientAddress, proto: 'https', port: request.origin.port, upgrade: false },
        'https',
      );
      upstream = await this.opts.h2c.request({
        link,
        hostname,
        kind: 'https',
        port: request.origin.port,
        headers,
        endStream: client.endAfterHeaders,
      });
    } catch (err) {
      this.fail(request, err);
      return;
    }
    if (client.destroyed) {
      upstream.close(constants.NGHTTP2_CANCEL);
      return;
    }
    const outcome = await relayHttp2(client, upstream, this.opts.limits.responseTimeoutMs, this.opts.clock);
    if (outcome.kind === 'done') request.observe(hostname, outcome.status);
    else if (outcome.responseStarted) request.observe(hostname, 502);
    else this.fail(request, outcome.error);
  }

  private fail(request: Request, err: unknown): void {
    const status = statusForError(err);
    if (status >= 502 && status !== 503)
      this.opts.upstreamFailures.warn(request.hostname, 'upstream request failed', {
        host: request.hostname,
        status,
        err: describeError(err),
      });
    answer(request.stream, status, messageForStatus(status, request.hostname), request.observe);
  }
}

/** The gateway's own answer on a stream that has not responded yet. */
function answer(
  stream: ServerHttp2Stream,
  status: number,
  message: string,
  observe: (route: string, status: number) => void,
): void {
  observe('-', status);
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8' });
  stream.end(`${message}\n`);
}
