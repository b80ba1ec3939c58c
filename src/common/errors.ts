/**
 * The one catalog of WebGW errors. Every error carries a stable code (`WEBGW_ERR_*`) and says
 * whether retrying the same operation can help (docs/architecture.md, Code conventions).
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
  WEBGW_ERR_STREAM_LIMIT: { retryable: true, summary: 'too many streams on the session' },
  WEBGW_ERR_STREAM_REFUSED: { retryable: true, summary: 'stream refused before any byte was exchanged' },
  WEBGW_ERR_STREAM_RESET: { retryable: false, summary: 'stream reset by the peer' },
  WEBGW_ERR_SESSION_CLOSED: { retryable: true, summary: 'tunnel session closed' },
  WEBGW_ERR_PEER_DEAD: { retryable: true, summary: 'tunnel peer missed its pongs' },
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
} as const;

export type ErrorCode = keyof typeof errorCatalog;

export class WebgwError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WebgwError';
    this.code = code;
    this.retryable = errorCatalog[code].retryable;
  }
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
