/**
 * One public HTTP/1.1 connection: reads requests one at a time (pipelined ones wait their turn),
 * hands each head to the listener, lets the body flow once the listener attached an upstream,
 * and keeps the connection for the next request or closes it.
 *
 * Timeouts: a request head must be complete within `headerTimeoutMs` of its first byte, and of
 * the connection's start for the first request (slowloris: 408, then close); a kept connection
 * with no new request within `keepAliveTimeoutMs` is closed quietly.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Clock, Timer } from '../../common/clock.ts';
import { describeError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import type { ServedCertificate } from '../certificate-store.ts';
import { HttpRequestError, RequestParser, type RequestHead } from '../../common/http/request-parser.ts';

/** How long an ending connection may take to close after our answer. */
const END_GRACE_MS = 5000;

export interface ConnectionLimits {
  maxHeaderBytes: number;
  headerTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

/** How the client reached the gateway; for HTTPS, with the certificate its handshake got. */
export interface ConnectionOrigin {
  scheme: 'http' | 'https';
  /** The public port (X-Forwarded-Port). */
  port: number;
  certificate?: ServedCertificate;
}

export interface ConnectionHooks {
  /** A request head arrived; the socket is paused until `startBody` or an answer. */
  onRequest(conn: ClientConnection, head: RequestHead): void;
  /** An upgrade request: the listener takes the socket; `rest` are bytes already received after the head. */
  onUpgrade(conn: ClientConnection, head: RequestHead, rest: Buffer): void;
}

export interface BodySink {
  body(chunk: Buffer): void;
  end(): void;
  /** The body turned out malformed after the request was forwarded: the upstream side is spent. */
  abort(err: HttpRequestError): void;
}

export class ClientConnection {
  readonly socket: Socket;
  readonly origin: ConnectionOrigin;
  private readonly parser: RequestParser;
  private readonly limits: ConnectionLimits;
  private readonly clock: Clock;
  private readonly hooks: ConnectionHooks;
  private readonly log: Logger;
  private timer: Timer | undefined;
  private sink: BodySink | undefined;
  private requestComplete = false;
  private inRequest = false;
  private closing = false;
  /** socket.bytesRead when the last response finished; -1 before the first request. */
  private readAtLastFinish = -1;
  /** The connection is ending: input is read and dropped until the peer closes too. */
  private ending = false;
  /** The request stream is malformed: nothing more is parsed; the listener answers or cuts. */
  private broken = false;

  constructor(
    socket: Socket,
    origin: ConnectionOrigin,
    limits: ConnectionLimits,
    clock: Clock,
    hooks: ConnectionHooks,
    log: Logger,
  ) {
    this.socket = socket;
    this.origin = origin;
    this.limits = limits;
    this.clock = clock;
    this.hooks = hooks;
    this.log = log;
    this.parser = new RequestParser(limits.maxHeaderBytes, {
      head: (head) => this.onHead(head),
      body: (chunk) => this.sink?.body(chunk),
      done: () => {
        this.requestComplete = true;
        this.sink?.end();
      },
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.timer?.cancel());
    this.waitForHead(limits.headerTimeoutMs, true);
  }

  /** Lets the current request's body flow into `sink`; a body already complete ends it at once. */
  startBody(sink: BodySink): void {
    this.sink = sink;
    if (this.requestComplete) {
      sink.end();
      return;
    }
    this.parse(() => this.parser.continue());
    if (!this.socket.destroyed && !this.ending) this.socket.resume();
  }

  /** The response is complete: wait for the next request, or close the connection. */
  finishRequest(keep: boolean): void {
    this.inRequest = false;
    this.readAtLastFinish = this.socket.bytesRead;
    this.sink = undefined;
    if (!keep || this.closing || !this.requestComplete) {
      this.end();
      return;
    }
    this.requestComplete = false;
    this.waitForHead(this.limits.keepAliveTimeoutMs, false);
    this.parse(() => this.parser.next());
    if (!this.socket.destroyed && !this.inRequest && !this.ending) this.socket.resume();
  }

  /**
   * Asks a kept connection to close after its current response (gateway shutdown). Idle means
   * between requests with nothing of the next one read: a connection just accepted has its first
   * request coming (its client chose this gateway a moment ago), so it is served, within the
   * header timeout, and then closed.
   */
  closeWhenIdle(): void {
    this.closing = true;
    const idle = !this.inRequest && this.readAtLastFinish >= 0 && this.socket.bytesRead === this.readAtLastFinish;
    if (idle) this.end();
  }

  /**
   * An answer from the gateway itself. The connection stays only when the request had no body
   * still unread; otherwise it closes after the answer. `location`: for a redirect.
   */
  answer(status: number, message: string, keep = true, location?: string): void {
    const body = `${status} ${STATUS_CODES[status] ?? ''}: ${message}\n`;
    const extra = `${location ? `Location: ${location}\r\n` : ''}${status >= 400 ? `X-Webgw-Error: ${status}\r\n` : ''}`;
    this.respond(status, body, 'text/plain; charset=utf-8', keep, Buffer.byteLength(body), extra);
  }

  /**
   * A response the gateway writes itself, `body` as it is (`length`: its Content-Length, which a
   * HEAD answer states without the body); `extraHeaders`: whole header lines.
   */
  respond(
    status: number,
    body: string,
    contentType: string,
    keep: boolean,
    length = Buffer.byteLength(body),
    extraHeaders = '',
  ): void {
    const stay = keep && this.requestComplete && !this.closing;
    const head =
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${extraHeaders}Content-Type: ${contentType}\r\nContent-Length: ${length}\r\n` +
      `Cache-Control: no-store\r\n${stay ? '' : 'Connection: close\r\n'}\r\n`;
    this.socket.write(head + body);
    this.finishRequest(stay);
  }

  private onHead(head: RequestHead): void {
    this.timer?.cancel();
    this.inRequest = true;
    this.requestComplete = false;
    this.socket.pause();
    if (head.upgrade) {
      this.socket.removeAllListeners('data');
      this.hooks.onUpgrade(this, head, this.parser.takeBuffered());
      return;
    }
    // Without a body the request is complete now; the parser tells us through done().
    if (!head.framing) this.parse(() => this.parser.continue());
    else if (head.expectContinue && head.version === '1.1') this.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
    this.hooks.onRequest(this, head);
  }

  /**
   * Ends our side, then reads and drops whatever the client still sends (a body nobody wants),
   * so its end is seen and the socket closes; a client that does not close within a few seconds
   * is cut off.
   */
  private end(): void {
    if (this.ending) return;
    this.ending = true;
    this.socket.end();
    this.socket.resume();
    this.timer?.cancel();
    this.timer = this.clock.setTimeout(() => this.socket.destroy(), END_GRACE_MS);
  }

  private onData(chunk: Buffer): void {
    if (this.ending || this.broken) return;
    const waiting = !this.inRequest && this.parser.bufferedBytes === 0;
    if (!this.parse(() => this.parser.feed(chunk))) return;
    // The first byte of a request on a kept connection: the head now has headerTimeoutMs.
    if (waiting && !this.inRequest && this.parser.bufferedBytes > 0)
      this.waitForHead(this.limits.headerTimeoutMs, true);
  }

  /**
   * Every call into the parser goes through here: feed (bytes arrived), continue (the body may
   * flow) and next (a pipelined request may start) can each meet malformed input. A refusal ends
   * this connection with its status (or cuts it when a request was already forwarded); anything
   * else is a bug and ends this connection only. Returns false when the connection ended.
   */
  private parse(step: () => void): boolean {
    try {
      step();
      return true;
    } catch (err) {
      if (!(err instanceof HttpRequestError)) {
        this.log.error('HTTP connection failed unexpectedly; closing it', { err: describeError(err) });
        this.socket.destroy();
        return false;
      }
      this.log.debug('bad HTTP request from client', { status: err.status, err: err.message });
      if (this.inRequest && this.sink) {
        // The body went bad after the request was forwarded: the exchange ends (the client gets
        // the status if no response started) and nothing more is read from this connection.
        this.broken = true;
        this.sink.abort(err);
        return false;
      }
      this.inRequest = true;
      this.answer(err.status, err.message, false);
      return false;
    }
  }

  private waitForHead(ms: number, answer408: boolean): void {
    this.timer?.cancel();
    this.timer = this.clock.setTimeout(() => {
      if (this.inRequest || this.socket.destroyed) return;
      if (answer408 && this.parser.bufferedBytes > 0) {
        this.inRequest = true;
        this.answer(408, 'request headers not complete in time', false);
      } else {
        this.end();
      }
    }, ms);
  }
}
