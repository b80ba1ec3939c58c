/**
 * Grants: what an agent certificate allows its holder to serve, encoded as SAN URIs
 * (docs/architecture.md, Trust model):
 *
 *   webgw:http:shop.example.com    HTTP Host, plain HTTP
 *   webgw:https:shop.example.com   HTTPS: TLS terminated by the gateway (a certificate it holds),
 *                                  then HTTP by Host as above; alone, plain HTTP is redirected
 *   webgw:tls:db.example.com       TLS SNI (passthrough)
 *   webgw:tls-terminated:db.example.com  TLS SNI, terminated by the gateway, the plaintext relayed
 *   webgw:tcp:20001                a public TCP port
 *   webgw:h2c:grpc.example.com     not a route: the backend behind this HTTP or HTTPS name speaks
 *                                  HTTP/2 without TLS (prior knowledge, as gRPC servers do), so
 *                                  the gateway talks HTTP/2 to it (proxy/http2/)
 *   webgw:id:namespace/name/uid    the ExposedService (or any identity) it was issued for
 *
 * and grants that are not an agent's, each alone in a certificate the controller uses with one
 * gateway (verify.ts): `webgw:read:sessions` reads its session table, `webgw:write:acme-challenges`
 * hands it ACME HTTP-01 answers. Agents' parsing refuses them.
 *
 * A hostname may be a wildcard of one leftmost label (`*.example.com`), as in RFC 6125 §6.4.3.
 */
import { WebgwError } from '../common/errors.ts';

export interface Grants {
  http: string[];
  https: string[];
  tls: string[];
  tlsTerminated: string[];
  tcp: number[];
  /** HTTP/HTTPS names (among http and https) whose backend speaks HTTP/2 cleartext. */
  h2c: string[];
}

/** The hostname grant kinds, as they appear in the URI (`webgw:<kind>:<hostname>`). */
const HOSTNAME_KINDS = {
  http: 'http',
  https: 'https',
  tls: 'tls',
  'tls-terminated': 'tlsTerminated',
  h2c: 'h2c',
} as const satisfies Record<string, keyof Grants>;

/** True when the grants name at least one route. */
export function hasRoutes(grants: Grants): boolean {
  return (
    grants.http.length + grants.https.length + grants.tls.length + grants.tlsTerminated.length + grants.tcp.length > 0
  );
}

export interface GrantSet extends Grants {
  /** `namespace/name/uid` or any label the issuer chose; empty when none. */
  identity: string;
}

/** The only SAN of a session reader's certificate. */
export const SESSION_READER_GRANT = 'webgw:read:sessions';
/** The only SAN of the certificate the controller hands a gateway ACME challenge answers with. */
export const ACME_RESPONDER_GRANT = 'webgw:write:acme-challenges';
/** What the controller may do on a gateway's tunnel port: one grant per certificate. */
export type ControllerGrant = typeof SESSION_READER_GRANT | typeof ACME_RESPONDER_GRANT;

export const emptyGrants = (): GrantSet => ({
  http: [],
  https: [],
  tls: [],
  tlsTerminated: [],
  tcp: [],
  h2c: [],
  identity: '',
});

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const IDENTITY = /^[A-Za-z0-9._:/-]{1,253}$/;

/** Lower-cases and checks a DNS hostname (optionally `*.` wildcard); throws on anything else. */
export function normalizeHostname(input: string): string {
  const host = input.trim().toLowerCase().replace(/\.$/, '');
  const labels = host.split('.');
  const ok =
    host.length > 0 &&
    host.length <= 253 &&
    labels.every((label, i) => (i === 0 && label === '*' && labels.length > 2) || LABEL.test(label));
  if (!ok) throw new WebgwError('WEBGW_ERR_GRANT_INVALID', `invalid hostname ${JSON.stringify(input)}`);
  return host;
}

export function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new WebgwError('WEBGW_ERR_GRANT_INVALID', `invalid TCP port ${port}`);
  }
  return port;
}

export function grantsToUris(grants: GrantSet): string[] {
  const served = [...grants.http, ...grants.https].map(normalizeHostname);
  for (const h of grants.h2c) {
    if (!served.includes(normalizeHostname(h)))
      throw new WebgwError('WEBGW_ERR_GRANT_INVALID', `h2c grant ${JSON.stringify(h)} names no http or https grant`);
  }
  const uris = [
    ...Object.entries(HOSTNAME_KINDS).flatMap(([kind, field]) =>
      grants[field].map((h) => `webgw:${kind}:${normalizeHostname(h)}`),
    ),
    ...grants.tcp.map((p) => `webgw:tcp:${checkPort(p)}`),
  ];
  if (grants.identity) {
    if (!IDENTITY.test(grants.identity))
      throw new WebgwError('WEBGW_ERR_GRANT_INVALID', `invalid identity ${JSON.stringify(grants.identity)}`);
    uris.push(`webgw:id:${grants.identity}`);
  }
  return uris;
}

/** Reads the grants back from SAN URIs; URIs of other schemes are ignored, malformed ones throw. */
export function grantsFromUris(uris: readonly string[]): GrantSet {
  const out = emptyGrants();
  for (const uri of uris) {
    if (!uri.startsWith('webgw:')) continue;
    const [, kind, ...rest] = uri.split(':');
    const value = rest.join(':');
    const field = Object.hasOwn(HOSTNAME_KINDS, kind ?? '')
      ? HOSTNAME_KINDS[kind as keyof typeof HOSTNAME_KINDS]
      : undefined;
    if (field) {
      out[field].push(normalizeHostname(value));
      continue;
    }
    switch (kind) {
      case 'tcp':
        if (!/^\d{1,5}$/.test(value))
          throw new WebgwError('WEBGW_ERR_GRANT_INVALID', `invalid TCP grant ${JSON.stringify(uri)}`);
        out.tcp.push(checkPort(Number(value)));
        break;
      case 'id':
        if (!IDENTITY.test(value) || out.identity)
          throw new WebgwError('WEBGW_ERR_GRANT_INVALID', `invalid identity grant ${JSON.stringify(uri)}`);
        out.identity = value;
        break;
      default:
        throw new WebgwError('WEBGW_ERR_GRANT_INVALID', `unknown grant kind in ${JSON.stringify(uri)}`);
    }
  }
  return out;
}

/** True when `pattern` (a granted name, maybe `*.x.y`) covers `hostname`. */
export function hostnameMatches(pattern: string, hostname: string): boolean {
  if (pattern === hostname) return true;
  if (!pattern.startsWith('*.')) return false;
  const suffix = pattern.slice(1); // ".x.y"
  return hostname.endsWith(suffix) && hostname.indexOf('.') === hostname.length - suffix.length;
}

/**
 * Parses Node's `X509Certificate.subjectAltName` text ("DNS:a, URI:b, ..."), where values with
 * special characters are JSON-quoted (Node ≥ 17.3.1, CVE-2021-44532).
 */
export function parseSubjectAltName(text: string | undefined): Array<{ type: string; value: string }> {
  const out: Array<{ type: string; value: string }> = [];
  if (!text) return out;
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon).trim();
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      let j = colon + 2;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      next = text.indexOf(', ', j + 1);
    } else {
      next = text.indexOf(', ', colon + 1);
      value = text.slice(colon + 1, next < 0 ? text.length : next);
    }
    out.push({ type, value });
    if (next < 0) break;
    i = next + 2;
  }
  return out;
}
