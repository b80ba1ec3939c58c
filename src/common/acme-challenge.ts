/**
 * ACME HTTP-01 answers (RFC 8555 §8.3) the controller hands to each gateway replica: PUT
 * `ACME_CHALLENGE_PATH<token>` on its tunnel port over mutual TLS, with a certificate of that
 * gateway's CA whose only grant is ACME_RESPONDER_GRANT (pki/verify.ts); DELETE once the order
 * is done. The gateway then answers `GET /.well-known/acme-challenge/<token>` on its HTTP
 * listener, for that hostname only. One format, imported by the writer (controller/acme) and
 * the reader (proxy/acme-challenges.ts).
 */
import { WebgwError } from './errors.ts';

export const ACME_CHALLENGE_PATH = '/v1/acme-challenges/';
export const WELL_KNOWN_ACME_PREFIX = '/.well-known/acme-challenge/';
/** RFC 8555 §8.3: base64url, at least 128 bits of entropy. */
const TOKEN = /^[A-Za-z0-9_-]{22,128}$/;
/** token "." base64url(SHA-256 JWK thumbprint): 43 characters of thumbprint. */
const KEY_AUTHORIZATION = /^[A-Za-z0-9_-]{22,128}\.[A-Za-z0-9_-]{43}$/;
export const MAX_CHALLENGE_BODY_BYTES = 1024;

export interface ChallengeAnswer {
  hostname: string;
  keyAuthorization: string;
}

export function isChallengeToken(token: string): boolean {
  return TOKEN.test(token);
}

/** The PUT body: `{hostname, keyAuthorization}`, checked; throws WEBGW_ERR_ACME_CHALLENGE. */
export function parseChallengeAnswer(token: string, text: string): ChallengeAnswer {
  const bad = (why: string): never => {
    throw new WebgwError('WEBGW_ERR_ACME_CHALLENGE', `bad ACME challenge answer: ${why}`);
  };
  if (!isChallengeToken(token)) bad('the token is not base64url of 22 to 128 characters');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    bad('not JSON');
  }
  const { hostname, keyAuthorization } = (value ?? {}) as Record<string, unknown>;
  if (typeof hostname !== 'string' || typeof keyAuthorization !== 'string')
    return bad('hostname and keyAuthorization must be strings');
  if (!KEY_AUTHORIZATION.test(keyAuthorization) || !keyAuthorization.startsWith(`${token}.`))
    bad('keyAuthorization is not "<token>.<thumbprint>"');
  // The receiving side normalizes the name (pki/grants.ts); here only its shape is bounded.
  if (hostname.length === 0 || hostname.length > 253 || hostname.includes('*'))
    bad(`invalid hostname ${JSON.stringify(hostname.slice(0, 64))} (HTTP-01 names one host, no wildcard)`);
  return { hostname, keyAuthorization };
}
