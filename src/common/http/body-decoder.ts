/**
 * HTTP/1.1 message body framing (RFC 9112 §6-7), shared by the request and the response parser:
 * a body is `length` bytes, chunked, or (responses only) everything until the connection closes.
 * Chunked bodies are decoded; trailer fields are dropped (RFC 9110 §6.5.1 allows it).
 *
 * Bounded: a chunk-size line is at most 1 KiB, trailers at most `maxTrailerBytes`. `feed`
 * returns how many bytes of the chunk belonged to the body, so what follows (a pipelined request,
 * or bytes a backend must not send) stays with the caller.
 */
import { hasControlCharacter } from './syntax.ts';
const CRLF = Buffer.from('\r\n');
const MAX_CHUNK_LINE = 1024;

export type Framing = { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'until-close' };

export interface BodyHandlers {
  body(chunk: Buffer): void;
  done(): void;
}

type State = 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'until-close' | 'done';

export class BodyDecoder {
  private state: State;
  private remaining = 0;
  private pending: Buffer | undefined;
  private trailerBytes = 0;
  private readonly handlers: BodyHandlers;
  private readonly fail: (why: string) => never;
  private readonly maxTrailerBytes: number;

  constructor(framing: Framing, handlers: BodyHandlers, fail: (why: string) => never, maxTrailerBytes = 64 * 1024) {
    this.handlers = handlers;
    this.fail = fail;
    this.maxTrailerBytes = maxTrailerBytes;
    if (framing.kind === 'length') {
      this.state = 'length';
      this.remaining = framing.length;
    } else {
      this.state = framing.kind === 'chunked' ? 'chunk-size' : 'until-close';
    }
  }

  get done(): boolean {
    return this.state === 'done';
  }

  /** Call once after construction: a zero-length body is done at once. */
  start(): void {
    if (this.state === 'length' && this.remaining === 0) this.finish();
  }

  /** Consumes body bytes from `chunk`; returns how many it used (less than all once done). */
  feed(chunk: Buffer): number {
    let data = chunk;
    let carried = 0;
    if (this.pending) {
      carried = this.pending.length;
      data = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    const total = data.length;
    while (data.length > 0 && this.state !== 'done') {
      switch (this.state) {
        case 'length':
        case 'chunk-data': {
          const n = Math.min(this.remaining, data.length);
          this.handlers.body(data.subarray(0, n));
          this.remaining -= n;
          data = data.subarray(n);
          if (this.remaining === 0) {
            if (this.state === 'length') this.finish();
            else this.state = 'chunk-crlf';
          }
          break;
        }
        case 'chunk-size': {
          const eol = data.indexOf(CRLF);
          if (eol < 0) {
            if (data.length > MAX_CHUNK_LINE) this.fail('chunk size line too long');
            this.pending = data;
            return chunk.length;
          }
          if (eol > MAX_CHUNK_LINE) this.fail('chunk size line too long');
          const full = data.toString('latin1', 0, eol);
          if (hasControlCharacter(full)) this.fail('control character in a chunk size line');
          // chunk-size [ BWS ";" chunk-ext ] (RFC 9112 §7.1, §7.1.1): no whitespace before the size.
          const line = full.split(';')[0]!.replace(/[ \t]+$/, '');
          if (!/^[0-9a-fA-F]{1,8}$/.test(line)) this.fail(`bad chunk size ${JSON.stringify(line.slice(0, 40))}`);
          this.remaining = parseInt(line, 16);
          data = data.subarray(eol + 2);
          this.state = this.remaining === 0 ? 'trailers' : 'chunk-data';
          break;
        }
        case 'chunk-crlf': {
          if (data.length < 2) {
            this.pending = data;
            return chunk.length;
          }
          if (data[0] !== 13 || data[1] !== 10) this.fail('missing CRLF after chunk data');
          data = data.subarray(2);
          this.state = 'chunk-size';
          break;
        }
        case 'trailers': {
          const eol = data.indexOf(CRLF);
          if (eol < 0) {
            if (data.length > this.maxTrailerBytes) this.fail('trailers too large');
            this.pending = data;
            return chunk.length;
          }
          this.trailerBytes += eol + 2;
          if (this.trailerBytes > this.maxTrailerBytes) this.fail('trailers too large');
          if (hasControlCharacter(data.toString('latin1', 0, eol))) this.fail('control character in a trailer field');
          data = data.subarray(eol + 2);
          if (eol === 0) this.finish();
          break;
        }
        case 'until-close':
          this.handlers.body(data);
          return chunk.length;
      }
    }
    // What is left of `data` was not ours; the carried-over bytes came before `chunk`.
    return total - data.length - carried;
  }

  /** The connection ended: completes a close-delimited body; anything else was cut short. */
  end(): void {
    if (this.state === 'until-close') {
      this.finish();
      return;
    }
    if (this.state !== 'done') this.fail('connection closed before the body was complete');
  }

  private finish(): void {
    this.state = 'done';
    this.handlers.done();
  }
}
