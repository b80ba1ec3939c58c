/**
 * The one catalog of WebGW errors (docs/errors.md lists it; a test keeps the two equal). Every
 * error carries a stable code (`WEBGW_ERR_*`), says whether retrying the same operation later can
 * help (`retryable`) and whether the gateway may try another agent at once because no byte of
 * the stream was exchanged (`anotherAgent`), and carries the detail its caller answers with: an
 * HTTP status, a WebSocket close code, a tunnel reset code. No bare `new Error` in src/ (lint).
 */
export const errorCatalog = {
  WEBGW_ERR_CONFIG_INVALID: { retryable: false, summary: 'configuration is invalid' },
  WEBGW_ERR_CONFIG_READ: { retryable: false, summary: 'configuration file cannot be read' },
  WEBGW_ERR_CREDENTIALS: { retryable: true, summary: 'credential files cannot be loaded' },
  WEBGW_ERR_CERT_INVALID: { retryable: false, summary: 'certificate is not acceptable' },
  WEBGW_ERR_CERT_EXPIRED: { retryable: false, summary: 'certificate is expired or not yet valid' },
  WEBGW_ERR_CERT_UNTRUSTED: { retryable: false, summary: 'certificate was not issued by the expected CA' },
  WEBGW_ERR_GRANT_INVALID: { retryable: false, summary: 'grant is malformed' },
  WEBGW_ERR_PROTOCOL: { retryable: false, summary: 'tunnel protocol violation' },
  WEBGW_ERR_FLOW_CONTROL: { retryable: false, summary: 'peer sent more than its flow-control credit' },
  WEBGW_ERR_STREAM_LIMIT: { retryable: true, anotherAgent: true, summary: 'too many streams on the session' },
  WEBGW_ERR_STREAM_REFUSED: {
    retryable: true,
    anotherAgent: true,
    summary: 'stream refused before any byte was exchanged',
  },
  WEBGW_ERR_STREAM_RESET: { retryable: false, summary: 'stream reset by the peer' },
  WEBGW_ERR_SESSION_CLOSED: { retryable: true, anotherAgent: true, summary: 'tunnel session closed' },
  WEBGW_ERR_PEER_DEAD: {
    retryable: true,
    summary: 'nothing heard from the tunnel peer for `keepalive.missedPongs` ping intervals',
  },
  WEBGW_ERR_PEER_STALLED: { retryable: true, summary: 'tunnel peer keeps pinging but stopped reading' },
  WEBGW_ERR_WEBSOCKET_CLOSED: { retryable: true, summary: 'the tunnel WebSocket closed abnormally' },
  WEBGW_ERR_WEBSOCKET_PROTOCOL: { retryable: false, summary: 'the tunnel WebSocket broke RFC 6455 or a limit' },
  WEBGW_ERR_HTTP_REQUEST: { retryable: false, summary: 'HTTP request is malformed or too large' },
  WEBGW_ERR_PREMATURE_CLOSE: { retryable: false, summary: 'one side of a relay closed before the other finished' },
  WEBGW_ERR_HANDSHAKE: { retryable: true, summary: 'WebSocket handshake with the gateway failed' },
  WEBGW_ERR_NO_AGENT: { retryable: true, summary: 'no agent is connected for this route' },
  WEBGW_ERR_NO_ROUTE: { retryable: false, summary: 'no route for this host or port' },
  WEBGW_ERR_BACKEND: { retryable: true, summary: 'local backend failed' },
  WEBGW_ERR_TIMEOUT: { retryable: true, summary: 'operation timed out' },
  WEBGW_ERR_NO_CERTIFICATE: { retryable: false, summary: 'the gateway holds no certificate for this name' },
  WEBGW_ERR_CLIENT_HELLO: { retryable: false, summary: 'TLS ClientHello is malformed or too large' },
  WEBGW_ERR_ACME_CHALLENGE: { retryable: false, summary: 'ACME challenge answer is malformed' },
  WEBGW_ERR_ACME: { retryable: true, summary: 'ACME order failed' },
  WEBGW_ERR_USAGE: { retryable: false, summary: 'command-line usage error' },
  WEBGW_ERR_KUBE: { retryable: true, summary: 'the Kubernetes API refused or failed a request' },
  WEBGW_ERR_WEBHOOK: { retryable: true, summary: 'the injection webhook thread did not start or ended' },
  WEBGW_ERR_UNEXPECTED: { retryable: false, summary: 'something other than an Error was thrown' },
} as const satisfies Record<string, { retryable: boolean; anotherAgent?: boolean; summary: string }>;

export type ErrorCode = keyof typeof errorCatalog;

export interface ErrorDetail {
  cause?: unknown;
  /** The HTTP status the gateway answers with. */
  status?: number;
  /** The WebSocket close code (RFC 6455 §7.4) the connection is closed with. */
  closeCode?: number;
  /** The tunnel reset code (tunnel/frame.ts ResetCode) the peer sent or is sent. */
  resetCode?: number;
}

export class WebgwError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** No byte was exchanged: the same request may go to another agent now. */
  readonly anotherAgent: boolean;
  readonly status: number | undefined;
  readonly closeCode: number | undefined;
  readonly resetCode: number | undefined;

  constructor(code: ErrorCode, message: string, detail: ErrorDetail = {}) {
    super(message, detail.cause === undefined ? undefined : { cause: detail.cause });
    this.name = 'WebgwError';
    this.code = code;
    const entry: { retryable: boolean; anotherAgent?: boolean } = errorCatalog[code];
    this.retryable = entry.retryable;
    this.anotherAgent = entry.anotherAgent === true;
    this.status = detail.status;
    this.closeCode = detail.closeCode;
    this.resetCode = detail.resetCode;
  }
}

/** Any thrown value as an Error, for code that must hand one on. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new WebgwError('WEBGW_ERR_UNEXPECTED', String(err), { cause: err });
}

export function isWebgwError(err: unknown, code?: ErrorCode): err is WebgwError {
  return err instanceof WebgwError && (code === undefined || err.code === code);
}

/** A readable one-line description of any thrown value, for logs. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
