/**
 * Relays bytes both ways between two duplex streams with backpressure (stream.pipeline honours
 * write()'s return value) and half-close: the end of one side's reading becomes the end of the
 * other's writing. One idempotent teardown destroys both sides (design: code conventions 4).
 */
import { pipeline } from 'node:stream';
import type { Duplex } from 'node:stream';

export interface RelayResult {
  error?: Error;
}

export function relay(a: Duplex, b: Duplex, done?: (result: RelayResult) => void): () => void {
  let finished = 0;
  let tornDown = false;
  let firstError: Error | undefined;
  const teardown = (err?: Error): void => {
    if (tornDown) return;
    tornDown = true;
    a.destroy();
    b.destroy();
    done?.(firstError ?? err ? { error: firstError ?? err } : {});
  };
  const onPipeDone = (err?: Error | null): void => {
    if (err && !firstError && !isBenignClose(err)) firstError = err;
    if (err) {
      teardown(err);
      return;
    }
    finished += 1;
    if (finished === 2) teardown();
  };
  pipeline(a, b, onPipeDone);
  pipeline(b, a, onPipeDone);
  return () => teardown();
}

/** Closing errors that are the normal end of a connection, not failures worth a log line. */
export function isBenignClose(err: Error): boolean {
  const code = (err as { code?: string }).code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED';
}
