/**
 * Pure header rules between HTTP/2 clients and backends (RFC 9113 §8): pseudo-headers, the
 * fields HTTP/2 forbids (connection-specific ones), cookies split across fields, and the same
 * X-Forwarded-* rules as HTTP/1.1 (http/headers.ts).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { forwardRequestHeaders, forwardResponseHeaders, type ForwardContext } from '../http/headers.ts';

/** Fields an HTTP/2 message must not carry (RFC 9113 §8.2.2); `te` is allowed as `trailers` only. */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

export interface Http2RequestHead {
  method: string;
  /** `:path`: origin-form target (or `*` for OPTIONS). */
  path: string;
  /** `:authority`, else Host. */
  authority: string;
  /** Raw `[name, value, ...]` without pseudo-headers, cookies joined into one field. */
  fields: string[];
}

/** Reads a client's request head; a string says why it is malformed (400). */
export function readRequestHead(rawHeaders: readonly string[]): Http2RequestHead | string {
  let method = '';
  let path = '';
  let authority = '';
  let host = '';
  const cookies: string[] = [];
  const fields: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const value = rawHeaders[i + 1] as string;
    if (name === ':method') method = value;
    else if (name === ':path') path = value;
    else if (name === ':authority') authority = value;
    else if (name.startsWith(':'))
      continue; // :scheme, :protocol: the gateway knows its own
    else if (name === 'cookie') cookies.push(value);
    else if (name === 'host') host = value;
    else fields.push(name, value);
  }
  if (!method) return 'missing :method';
  if (method === 'CONNECT') return 'CONNECT is not served';
  if (!path || (!path.startsWith('/') && !(path === '*' && method === 'OPTIONS'))) return 'missing or invalid :path';
  // RFC 9113 §8.2.3: cookie fields may be split; HTTP/1.1 wants them as one, joined by "; ".
  if (cookies.length > 0) fields.push('cookie', cookies.join('; '));
  return { method, path, authority: authority || host, fields };
}

/** The request's fields for an HTTP/1.1 backend: Host first, then the rest with X-Forwarded-*. */
export function http1RequestFields(head: Http2RequestHead, ctx: ForwardContext): string[] {
  return forwardRequestHeaders(['Host', head.authority, ...head.fields], ctx);
}

/**
 * The request for an HTTP/2 backend: the same fields (X-Forwarded-* included), `te: trailers`
 * kept (gRPC needs it), names lower case as HTTP/2 requires.
 */
export function http2RequestHeaders(
  head: Http2RequestHead,
  ctx: ForwardContext,
  scheme: 'http' | 'https',
): OutgoingHttpHeaders {
  const te = fieldValues(head.fields, 'te').some((v) => v.trim().toLowerCase() === 'trailers');
  const out: OutgoingHttpHeaders = {
    ':method': head.method,
    ':path': head.path,
    ':scheme': scheme,
    ':authority': head.authority,
  };
  // Host goes in for X-Forwarded-Host and comes out again: :authority carries it in HTTP/2.
  addFields(out, forwardRequestHeaders(['host', head.authority, ...head.fields], ctx));
  delete out.host;
  if (te) out.te = 'trailers';
  return out;
}

/** An HTTP/1.1 backend's response head for an HTTP/2 client: hop-by-hop fields gone. */
export function http2ResponseHeaders(status: number, rawHeaders: readonly string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ':status': status };
  addFields(out, forwardResponseHeaders(rawHeaders));
  return out;
}

/** An HTTP/2 backend's response or trailers for the client: pseudo-headers but :status dropped. */
export function relayedHeaders(headers: IncomingHttpHeaders, keepStatus: boolean): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || CONNECTION_SPECIFIC.has(name)) continue;
    if (name.startsWith(':') && !(keepStatus && name === ':status')) continue;
    out[name] = value;
  }
  return out;
}

/** Raw `[name, value, ...]` pairs into an HTTP/2 header object (lower-case names, repeated ones as lists). */
function addFields(out: OutgoingHttpHeaders, raw: readonly string[]): void {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (CONNECTION_SPECIFIC.has(name) || name === 'te' || name.startsWith(':')) continue;
    const value = raw[i + 1] as string;
    const prior = out[name];
    if (prior === undefined) out[name] = value;
    else if (Array.isArray(prior)) prior.push(value);
    else out[name] = [String(prior), value];
  }
}

function fieldValues(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2)
    if ((raw[i] as string).toLowerCase() === name) out.push(raw[i + 1] as string);
  return out;
}
