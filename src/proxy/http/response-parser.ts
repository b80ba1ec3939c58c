/**
 * An incremental HTTP/1.1 response parser for the upstream side of the reverse proxy
 * (RFC 9112): status line and headers, then a body framed by Content-Length, chunked coding, or
 * the end of the stream. It exists because node:http's client costs about a third of the
 * gateway's CPU per proxied request (ClientRequest, Agent and IncomingMessage machinery), and
 * the proxy only needs framing: where a response starts, what it says, where it ends.
 *
 * Bounded: the head is at most MAX_HEAD_BYTES with at most MAX_HEADERS headers, a chunk-size
 * line at most 1 KiB. Anything malformed throws WEBGW_ERR_BACKEND (the client gets a 502).
 */
import { TOKEN, hasControlCharacter } from '../../common/http/syntax.ts';
import { WebgwError } from '../../common/errors.ts';
import { BodyDecoder, type Framing } from '../../common/http/body-decoder.ts';

export const MAX_HEAD_BYTES = 64 * 1024;
const MAX_HEADERS = 256;
const HEAD_END = Buffer.from('\r\n\r\n');

export interface ResponseHead {
  status: number;
  statusMessage: string;
  /** `[name, value, name, value, ...]` as received. */
  rawHeaders: string[];
  /** The stream may carry another request after this response. */
  keepAlive: boolean;
  /** The body's length when the backend framed it by Content-Length (0 when it has none). */
  bodyLength: number | undefined;
}

export interface ResponseHandlers {
  head(head: ResponseHead): void;
  /**
   * A 101 answer to a request that asked to upgrade: parsing stops; `rest` are the bytes that
   * followed the head (the new protocol's). Without this handler a 101 is a malformed response.
   */
  switched?(head: ResponseHead, rest: Buffer): void;
  body(chunk: Buffer): void;
  done(): void;
}

const fail = (why: string): never => {
  throw new WebgwError('WEBGW_ERR_BACKEND', `malformed response from the backend: ${why}`);
};

export class ResponseParser {
  private pending: Buffer = Buffer.alloc(0);
  private body: BodyDecoder | undefined;
  private finished = false;
  private switchedHead: ResponseHead | undefined;
  private keepAlive = false;
  private readonly headRequest: boolean;
  private readonly handlers: ResponseHandlers;

  constructor(headRequest: boolean, handlers: ResponseHandlers) {
    this.headRequest = headRequest;
    this.handlers = handlers;
  }

  feed(chunk: Buffer): void {
    let data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (data.length > 0) {
      // Bytes after a complete response that nobody asked for: the stream is unusable.
      if (this.finished) fail('data after the end of the response');
      if (this.body) {
        data = data.subarray(this.body.feed(data));
        continue;
      }
      const end = data.indexOf(HEAD_END);
      if (end < 0) {
        if (data.length > MAX_HEAD_BYTES) fail(`head larger than ${MAX_HEAD_BYTES} bytes`);
        this.pending = data;
        return;
      }
      if (end > MAX_HEAD_BYTES) fail(`head larger than ${MAX_HEAD_BYTES} bytes`);
      const head = data.toString('latin1', 0, end);
      data = data.subarray(end + 4);
      if (this.onHead(head) === 'switched') return this.switchProtocols(data);
    }
  }

  /** The backend closed its side. Completes a close-delimited body; anything else was cut short. */
  end(): void {
    if (this.finished) return;
    if (!this.body) return fail('connection closed before the response was complete');
    this.body.end();
  }

  private switchProtocols(rest: Buffer): void {
    this.finished = true;
    const head = this.switchedHead as ResponseHead;
    this.switchedHead = undefined;
    (this.handlers.switched as NonNullable<ResponseHandlers['switched']>)(head, rest);
  }

  private onHead(head: string): 'switched' | undefined {
    const lines = head.split('\r\n');
    const statusLine = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
    if (!statusLine) fail(`bad status line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
    const [, minor, code, message] = statusLine as RegExpExecArray;
    const status = Number(code);
    if (lines.length - 1 > MAX_HEADERS) fail(`more than ${MAX_HEADERS} headers`);
    const rawHeaders: string[] = [];
    let contentLength: number | undefined;
    let chunked = false;
    let transferEncoding = false;
    let connectionClose = minor === '0';
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      const colon = line.indexOf(':');
      // No obs-fold (RFC 9112 §5.2), no whitespace before the colon (§5.1), a token for a name.
      if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) fail(`bad header line ${JSON.stringify(line.slice(0, 80))}`);
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).trim();
      if (hasControlCharacter(value)) fail(`control character in header ${name}`);
      rawHeaders.push(name, value);
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        if (!/^\d{1,15}$/.test(value) || (contentLength !== undefined && contentLength !== Number(value)))
          fail(`bad Content-Length ${JSON.stringify(value)}`);
        contentLength = Number(value);
      } else if (lower === 'transfer-encoding') {
        transferEncoding = true;
        chunked =
          value
            .toLowerCase()
            .split(',')
            .map((s) => s.trim())
            .at(-1) === 'chunked';
      } else if (lower === 'connection') {
        const tokens = value
          .toLowerCase()
          .split(',')
          .map((s) => s.trim());
        // Dropping these as hop-by-hop would leave the client to frame the body differently.
        if (tokens.includes('content-length') || tokens.includes('transfer-encoding'))
          fail('Connection header names a framing field');
        if (tokens.includes('close')) connectionClose = true;
        if (minor === '0' && tokens.includes('keep-alive')) connectionClose = false;
      }
    }
    if (hasControlCharacter(message ?? '')) fail('control character in the status line');
    if (transferEncoding && contentLength !== undefined) fail('both Content-Length and Transfer-Encoding');
    if (status === 101) {
      if (!this.handlers.switched) fail('unexpected 101 Switching Protocols');
      this.switchedHead = { status, statusMessage: message ?? '', rawHeaders, keepAlive: false, bodyLength: 0 };
      return 'switched';
    }
    // 1xx interim responses (100 Continue, 103 Early Hints) are not forwarded; the final one follows.
    if (status < 200) return undefined;
    const noBody = this.headRequest || status === 204 || status === 304;
    if (noBody) {
      this.keepAlive = !connectionClose;
      this.handlers.head({
        status,
        statusMessage: message ?? '',
        rawHeaders,
        keepAlive: this.keepAlive,
        bodyLength: 0,
      });
      this.finish();
      return undefined;
    }
    let framing: Framing;
    if (transferEncoding) {
      framing = chunked ? { kind: 'chunked' } : { kind: 'until-close' };
      this.keepAlive = chunked && !connectionClose;
    } else if (contentLength !== undefined) {
      framing = { kind: 'length', length: contentLength };
      this.keepAlive = !connectionClose;
    } else {
      framing = { kind: 'until-close' };
      this.keepAlive = false;
    }
    this.handlers.head({
      status,
      statusMessage: message ?? '',
      rawHeaders,
      keepAlive: this.keepAlive,
      bodyLength: framing.kind === 'length' ? framing.length : undefined,
    });
    this.body = new BodyDecoder(
      framing,
      { body: (c) => this.handlers.body(c), done: () => this.finish() },
      fail,
      MAX_HEAD_BYTES,
    );
    this.body.start();
    return undefined;
  }

  private finish(): void {
    this.finished = true;
    this.handlers.done();
  }
}
