/**
 * The header rules every HTTP hop of WebGW applies to a request (RFC 9110 §7.6.1): hop-by-hop
 * fields and those the Connection header names are removed, and the X-Forwarded-* fields are the
 * hop's own, whatever the client sent. The gateway applies them to requests it proxies
 * (proxy/http/headers.ts); the agent to HTTP it decrypted itself (agent/http-forwarding.ts).
 */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

/**
 * Client-sent fields that say where a request came from: the gateway sets them itself (a client
 * could otherwise pose as another address, scheme, host or port to the backend). X-Forwarded-For
 * is the exception: it is appended to, as every proxy does, and backends read its last entry.
 */
export const FORWARDED = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'forwarded',
  'x-real-ip',
]);

export interface ForwardContext {
  clientAddress: string;
  proto: 'http' | 'https';
  /** The gateway's listening port (X-Forwarded-Port). */
  port: number;
  /** Keep Connection/Upgrade: the request is an Upgrade relayed as raw bytes. */
  upgrade: boolean;
}

/**
 * Request headers for the backend, in raw `[name, value, ...]` form: hop-by-hop headers removed
 * (unless upgrading), X-Forwarded-For appended to, X-Forwarded-Proto/-Host set by the gateway.
 */
export function forwardRequestHeaders(rawHeaders: readonly string[], ctx: ForwardContext): string[] {
  const dropped = ctx.upgrade ? new Set<string>() : connectionTokens(rawHeaders);
  const out: string[] = [];
  let priorFor = '';
  let host = '';
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const value = rawHeaders[i + 1] as string;
    const lower = name.toLowerCase();
    if (lower === 'host') host = value;
    if (lower === 'x-forwarded-for') {
      priorFor = priorFor ? `${priorFor}, ${value}` : value;
      continue;
    }
    if (FORWARDED.has(lower)) continue;
    if (!ctx.upgrade && (HOP_BY_HOP.has(lower) || dropped.has(lower))) continue;
    out.push(name, value);
  }
  out.push('X-Forwarded-For', priorFor ? `${priorFor}, ${ctx.clientAddress}` : ctx.clientAddress);
  out.push('X-Forwarded-Proto', ctx.proto);
  if (host) out.push('X-Forwarded-Host', host);
  out.push('X-Forwarded-Port', String(ctx.port));
  return out;
}

/** A raw request head: request line and header lines. */
export function serializeRequestHead(
  method: string,
  url: string,
  httpVersion: string,
  rawHeaders: readonly string[],
): Buffer {
  return Buffer.from(`${method} ${url} HTTP/${httpVersion}\r\n${headerLines(rawHeaders)}\r\n`, 'latin1');
}

/** `name: value\r\n` for each pair of raw `[name, value, ...]` headers. */
export function headerLines(rawHeaders: readonly string[]): string {
  let lines = '';
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) lines += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return lines;
}

export function connectionTokens(rawHeaders: readonly string[]): Set<string> {
  const tokens = new Set<string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() !== 'connection') continue;
    for (const t of (rawHeaders[i + 1] as string).split(',')) tokens.add(t.trim().toLowerCase());
  }
  return tokens;
}
