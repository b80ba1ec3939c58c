/** Chunked transfer coding (RFC 9112 §7.1) for bodies of unknown length, and feeding the response parser. */
import type { ResponseParser } from './response-parser.ts';

export const LAST_CHUNK = Buffer.from('0\r\n\r\n');
const CRLF = Buffer.from('\r\n');

/**
 * Writes `chunk` with chunked coding through `write`; all three parts are always written, and
 * the result is false when any write asked to wait.
 */
export function writeChunk(write: (data: Buffer) => boolean, chunk: Buffer): boolean {
  const size = write(Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'));
  const data = write(chunk);
  return write(CRLF) && size && data;
}

/**
 * Listeners that feed a tunnel stream's data and end into `parser`: a malformed response goes to
 * `failed` instead of throwing; `ended` follows a clean end of the stream.
 */
export function parserInput(
  parser: ResponseParser,
  failed: (err: Error) => void,
  ended: () => void,
): { data(chunk: Buffer): void; end(): void } {
  return {
    data(chunk) {
      try {
        parser.feed(chunk);
      } catch (err) {
        failed(err as Error);
      }
    },
    end() {
      try {
        parser.end();
        ended();
      } catch (err) {
        failed(err as Error);
      }
    },
  };
}
