/**
 * Pure header rules of the HTTP reverse proxy: Host parsing, hop-by-hop removal
 * (RFC 9110 §7.6.1) and the X-Forwarded-* headers the backend sees.
 */
import { normalizeHostname } from '../../pki/grants.ts';
import { HOP_BY_HOP, connectionTokens } from '../../common/http/forwarded.ts';

export {
  forwardRequestHeaders,
  headerLines,
  serializeRequestHead,
  type ForwardContext,
} from '../../common/http/forwarded.ts';

/** `Shop.Example.com:8080` → `shop.example.com`; undefined when absent or not a DNS name. */
export function hostFromHeader(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const withoutPort = host.startsWith('[') ? host : host.replace(/:\d{1,5}$/, '');
  try {
    const name = normalizeHostname(withoutPort);
    return name.includes('*') ? undefined : name;
  } catch {
    return undefined;
  }
}

/** Response headers for the client: hop-by-hop removed, the rest as the backend sent them. */
export function forwardResponseHeaders(rawHeaders: readonly string[]): string[] {
  const dropped = connectionTokens(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const lower = (rawHeaders[i] as string).toLowerCase();
    if (HOP_BY_HOP.has(lower) || dropped.has(lower)) continue;
    out.push(rawHeaders[i] as string, rawHeaders[i + 1] as string);
  }
  return out;
}
