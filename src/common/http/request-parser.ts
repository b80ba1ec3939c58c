/**
 * An incremental HTTP/1.1 request parser for the public side of the reverse proxy (RFC 9112):
 * request line and headers, then the body by Content-Length or chunked coding. It replaces
 * node:http's server, whose per-request machinery (IncomingMessage, ServerResponse, header
 * objects) was most of the gateway's CPU per proxied request.
 *
 * The parser holds still after each head and after each complete request: the connection decides
 * when the body may flow (once an upstream stream is ready) and when the next pipelined request
 * may start (once the response is done). Bytes it holds meanwhile are bounded by the caller
 * pausing the socket.
 *
 * Refusals are HttpRequestError with the status to answer: 400 (malformed, ambiguous framing:
 * both Content-Length and Transfer-Encoding, a coding other than chunked, a Connection header
 * that names a framing or routing field, control characters, an absolute-form target whose
 * authority is not the Host), 431 (head or header count over the limit). Strict on purpose: every
 * leniency is a place where the gateway and a backend could disagree on where a request ends
 * (request smuggling, RFC 9112 §11.2).
 */
import { TOKEN, hasControlCharacter } from './syntax.ts';
import { BodyDecoder, type Framing } from './body-decoder.ts';
import { WebgwError } from '../errors.ts';

const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEADERS = 256;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP\/1\.([01])$/;
/**
 * Fields a Connection header must not name: dropping them as hop-by-hop would change how the
 * backend frames or routes the request after the gateway already decided (smuggling).
 */
const PROTECTED_FIELDS = new Set(['content-length', 'transfer-encoding', 'host']);

/** A request the gateway answers itself: 400 (malformed) or 431 (head too large). */
export class HttpRequestError extends WebgwError {
  declare readonly status: 400 | 431;
  constructor(status: 400 | 431, message: string) {
    super('WEBGW_ERR_HTTP_REQUEST', message, { status });
  }
}

export interface RequestHead {
  method: string;
  target: string;
  version: '1.0' | '1.1';
  /** `[name, value, name, value, ...]` as received. */
  rawHeaders: string[];
  /** The Host header's value, when there is exactly one. */
  host: string | undefined;
  /** The client wants the connection kept after this request. */
  keepAlive: boolean;
  /** `Connection: upgrade` with an `Upgrade` header (WebSocket): relayed as raw bytes. */
  upgrade: boolean;
  expectContinue: boolean;
  /** How the body is framed; undefined when the request has none. */
  framing: Framing | undefined;
}

export interface RequestHandlers {
  head(head: RequestHead): void;
  body(chunk: Buffer): void;
  /** The request (head and body) is complete; the parser holds what follows until next(). */
  done(): void;
}

type State = 'head' | 'held-head' | 'body' | 'held-done';

const bad = (why: string): never => {
  throw new HttpRequestError(400, why);
};

export class RequestParser {
  private state: State = 'head';
  private buffered: Buffer = Buffer.alloc(0);
  private decoder: BodyDecoder | undefined;
  private readonly maxHeadBytes: number;
  private readonly handlers: RequestHandlers;

  constructor(maxHeadBytes: number, handlers: RequestHandlers) {
    this.maxHeadBytes = maxHeadBytes;
    this.handlers = handlers;
  }

  /** Bytes received and not yet parsed (a partial head, or what follows a held message). */
  get bufferedBytes(): number {
    return this.buffered.length;
  }

  feed(chunk: Buffer): void {
    this.buffered = this.buffered.length > 0 ? Buffer.concat([this.buffered, chunk]) : chunk;
    this.run();
  }

  /** After head(): lets the body flow (or completes a request without one). */
  continue(): void {
    if (this.state !== 'held-head') return;
    if (!this.decoder) {
      this.state = 'held-done';
      this.handlers.done();
      return;
    }
    this.state = 'body';
    this.decoder.start();
    this.run();
  }

  /** After done(): starts on the next request with the bytes already received. */
  next(): void {
    if (this.state !== 'held-done') return;
    this.state = 'head';
    this.decoder = undefined;
    this.run();
  }

  /** For an upgrade: everything received after the head, which belongs to the new protocol. */
  takeBuffered(): Buffer {
    const rest = this.buffered;
    this.buffered = Buffer.alloc(0);
    return rest;
  }

  private run(): void {
    while (this.buffered.length > 0) {
      if (this.state === 'body') {
        const used = (this.decoder as BodyDecoder).feed(this.buffered);
        this.buffered = this.buffered.subarray(used);
        if (!(this.decoder as BodyDecoder).done) return; // it kept a partial chunk line
        continue;
      }
      if (this.state !== 'head') return;
      // RFC 9112 §2.2: ignore empty lines before a request line.
      let start = 0;
      while (start + 1 < this.buffered.length && this.buffered[start] === 13 && this.buffered[start + 1] === 10)
        start += 2;
      if (start > 0) this.buffered = this.buffered.subarray(start);
      const end = this.buffered.indexOf(HEAD_END);
      if (end < 0) {
        if (this.buffered.length > this.maxHeadBytes)
          throw new HttpRequestError(431, `request head larger than ${this.maxHeadBytes} bytes`);
        return;
      }
      if (end + 4 > this.maxHeadBytes)
        throw new HttpRequestError(431, `request head larger than ${this.maxHeadBytes} bytes`);
      const head = this.parseHead(this.buffered.toString('latin1', 0, end));
      this.buffered = this.buffered.subarray(end + 4);
      this.decoder = head.framing
        ? new BodyDecoder(head.framing, { body: (c) => this.handlers.body(c), done: () => this.bodyDone() }, bad)
        : undefined;
      this.state = 'held-head';
      this.handlers.head(head);
      return;
    }
  }

  private bodyDone(): void {
    this.state = 'held-done';
    this.handlers.done();
  }

  private parseHead(text: string): RequestHead {
    const lines = text.split('\r\n');
    const requestLine = REQUEST_LINE.exec(lines[0] ?? '');
    if (!requestLine) bad(`bad request line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
    const [, method, target, minor] = requestLine as RegExpExecArray;
    if (lines.length - 1 > MAX_HEADERS) throw new HttpRequestError(431, `more than ${MAX_HEADERS} headers`);
    const rawHeaders: string[] = [];
    const hosts: string[] = [];
    let contentLength: number | undefined;
    let transferEncoding: string | undefined;
    const connection: string[] = [];
    let upgradeHeader = false;
    let expectContinue = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      const colon = line.indexOf(':');
      if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) bad(`bad header line ${JSON.stringify(line.slice(0, 80))}`);
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).trim();
      if (hasControlCharacter(value)) bad('control character in a header value');
      rawHeaders.push(name, value);
      switch (name.toLowerCase()) {
        case 'host':
          hosts.push(value);
          break;
        case 'content-length':
          if (!/^\d{1,15}$/.test(value) || (contentLength !== undefined && contentLength !== Number(value)))
            bad(`bad Content-Length ${JSON.stringify(value)}`);
          contentLength = Number(value);
          break;
        case 'transfer-encoding':
          transferEncoding = transferEncoding ? `${transferEncoding}, ${value}` : value;
          break;
        case 'connection':
          for (const t of value.split(',')) connection.push(t.trim().toLowerCase());
          break;
        case 'upgrade':
          upgradeHeader = true;
          break;
        case 'expect':
          expectContinue = value.toLowerCase() === '100-continue';
          break;
      }
    }
    if (hosts.length > 1) bad('more than one Host header');
    if (method === 'CONNECT') bad('CONNECT is not served');
    const named = connection.find((t) => PROTECTED_FIELDS.has(t));
    if (named) bad(`Connection header names ${named}`);
    checkTarget(target as string, hosts[0]);
    let framing: Framing | undefined;
    if (transferEncoding !== undefined) {
      // Both headers make the body's end ambiguous (request smuggling): refuse (RFC 9112 §6.3).
      if (contentLength !== undefined) bad('both Content-Length and Transfer-Encoding');
      // Only chunked: another coding before it would be decoded by nobody (the gateway
      // re-chunks the body) and a coding list is one more place for parsers to disagree.
      if (transferEncoding.trim().toLowerCase() !== 'chunked')
        bad(`unsupported Transfer-Encoding ${JSON.stringify(transferEncoding)}`);
      if (minor === '0') bad('Transfer-Encoding in an HTTP/1.0 request');
      framing = { kind: 'chunked' };
    } else if (contentLength !== undefined && contentLength > 0) {
      framing = { kind: 'length', length: contentLength };
    }
    const version = minor === '0' ? '1.0' : '1.1';
    const keepAlive = version === '1.1' ? !connection.includes('close') : connection.includes('keep-alive');
    return {
      method: method as string,
      target: target as string,
      version,
      rawHeaders,
      host: hosts[0],
      keepAlive,
      // An upgrade request with a body is served as a plain request (its Upgrade header is hop-by-hop).
      upgrade: upgradeHeader && connection.includes('upgrade') && framing === undefined,
      expectContinue,
      framing,
    };
  }
}

/**
 * origin-form (`/path`), asterisk-form for OPTIONS, or absolute-form whose authority is the Host
 * (RFC 9112 §3.2.2 lets the target's authority override Host; the gateway routes by Host, so the
 * two must agree).
 */
function checkTarget(target: string, host: string | undefined): void {
  if (target.startsWith('/') || target === '*') return;
  const absolute = /^https?:\/\/([^/?#]*)/i.exec(target);
  if (!absolute) bad(`bad request target ${JSON.stringify(target.slice(0, 80))}`);
  const authority = (absolute as RegExpExecArray)[1] as string;
  if (host === undefined || authority.toLowerCase() !== host.toLowerCase())
    bad('request target authority differs from Host');
}
