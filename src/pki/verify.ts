/**
 * Verifies an agent certificate as the gateway sees it after the TLS handshake: issued by this
 * gateway's CA, valid now, meant for client authentication, with well-formed grants. The
 * handshake already checked chain and dates (OpenSSL); checking again here keeps the rule in one
 * testable place and covers certificates that expire while their session is open.
 */
import type { X509Certificate } from 'node:crypto';
import { WebgwError } from '../common/errors.ts';
import { grantsFromUris, hasRoutes, parseSubjectAltName, type ControllerGrant, type GrantSet } from './grants.ts';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export interface VerifiedAgent {
  grants: GrantSet;
  notAfter: Date;
  serial: string;
  fingerprint: string;
}

/** True when `ca` issued `cert`: its subject names `cert`'s issuer and its key signed it. */
export function issuedBy(cert: X509Certificate, ca: X509Certificate): boolean {
  return cert.checkIssued(ca) && cert.verify(ca.publicKey);
}

/**
 * What every client certificate of a gateway's CA must be: issued by it, valid now, not a CA,
 * meant for client authentication. Returns its SAN URIs.
 */
function verifyClientCertificate(cert: X509Certificate, ca: X509Certificate, now: Date): string[] {
  if (!issuedBy(cert, ca)) {
    throw new WebgwError(
      'WEBGW_ERR_CERT_UNTRUSTED',
      `certificate ${cert.serialNumber} was not issued by ${ca.subject.replace(/\n/g, ', ')}`,
    );
  }
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (now < notBefore || now > notAfter) {
    throw new WebgwError(
      'WEBGW_ERR_CERT_EXPIRED',
      `certificate ${cert.serialNumber} is valid from ${notBefore.toISOString()} to ${notAfter.toISOString()}`,
    );
  }
  if (cert.ca) throw new WebgwError('WEBGW_ERR_CERT_INVALID', 'a CA certificate cannot authenticate an agent');
  const usages = cert.keyUsage ?? [];
  if (!usages.includes(CLIENT_AUTH))
    throw new WebgwError('WEBGW_ERR_CERT_INVALID', 'certificate is not valid for client authentication');
  return parseSubjectAltName(cert.subjectAltName)
    .filter((e) => e.type === 'URI')
    .map((e) => e.value);
}

export function verifyAgentCertificate(cert: X509Certificate, ca: X509Certificate, now: Date): VerifiedAgent {
  // A reader's certificate carries a grant kind agents do not know: grantsFromUris refuses it.
  const grants = grantsFromUris(verifyClientCertificate(cert, ca, now));
  if (!hasRoutes(grants)) {
    throw new WebgwError('WEBGW_ERR_CERT_INVALID', 'certificate carries no webgw grants');
  }
  return { grants, notAfter: new Date(cert.validTo), serial: cert.serialNumber, fingerprint: cert.fingerprint256 };
}

/**
 * A certificate the controller uses on one gateway's tunnel port (reading its session table,
 * handing it ACME answers): a client certificate of that gateway's CA whose only SAN is that one
 * grant. An agent's certificate (routes, identity) can do neither, a reader's cannot write ACME
 * answers, and neither can open a tunnel session.
 */
export function verifyControllerCertificate(
  cert: X509Certificate,
  ca: X509Certificate,
  now: Date,
  grant: ControllerGrant,
): void {
  const uris = verifyClientCertificate(cert, ca, now);
  const others = parseSubjectAltName(cert.subjectAltName).filter((e) => e.type !== 'URI');
  if (uris.length !== 1 || uris[0] !== grant || others.length > 0) {
    throw new WebgwError('WEBGW_ERR_CERT_INVALID', `certificate ${cert.serialNumber} does not grant ${grant}`);
  }
}
