/**
 * When a request may be sent again: a keep-alive stream can be closed by the backend just as it
 * is reused (RFC 9112 §9.3.1), so a request that failed on a reused stream, before any response
 * byte, is retried on a fresh one if it is safe to repeat (RFC 9110 §9.2.2) and has no body.
 * A timeout is not a stale stream: it is answered (504).
 */
import { isWebgwError } from '../../common/errors.ts';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);
const MAX_ATTEMPTS = 3;

export interface FailedAttempt {
  reused: boolean;
  error: Error;
  method: string;
  hasBody: boolean;
  /** 1 for the first try. */
  attempt: number;
}

export function mayRetry(f: FailedAttempt): boolean {
  return (
    f.reused &&
    !isWebgwError(f.error, 'WEBGW_ERR_TIMEOUT') &&
    !f.hasBody &&
    IDEMPOTENT.has(f.method) &&
    f.attempt < MAX_ATTEMPTS
  );
}
