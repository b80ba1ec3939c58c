/**
 * The Gateway's CA (created once, never regenerated: agents pin it) and its tunnel server
 * certificate (renewed at two thirds of its lifetime, or when the CA changed).
 */
import { X509Certificate } from 'node:crypto';
import { createCA, issueCertificate, validFor, type KeyPairPem } from '../../pki/issue.ts';
import { issuedBy } from '../../pki/verify.ts';
import { renewalTime } from '../../pki/lifetime.ts';
import { tunnelServerName, type TunnelCredentials } from './desired.ts';

const DAY = 24 * 3600_000;
export const CA_VALIDITY_MS = 10 * 365 * DAY;
export const TUNNEL_CERT_VALIDITY_MS = 90 * DAY;

export function newGatewayCA(gateway: string, now: Date): KeyPairPem {
  return createCA(`webgw gateway ${gateway}`, validFor(now, CA_VALIDITY_MS));
}

export function issueTunnelCertificate(gateway: string, ca: KeyPairPem, now: Date): TunnelCredentials {
  const pair = issueCertificate(
    ca,
    { commonName: tunnelServerName(gateway), usage: 'server', hosts: [tunnelServerName(gateway)] },
    validFor(now, TUNNEL_CERT_VALIDITY_MS),
  );
  return { caPem: ca.certPem, certPem: pair.certPem, keyPem: pair.keyPem };
}

/** When the current tunnel certificate should be replaced; undefined means now. */
export function tunnelRenewalTime(current: TunnelCredentials | undefined, ca: KeyPairPem): Date | undefined {
  if (!current) return undefined;
  try {
    const cert = new X509Certificate(current.certPem);
    if (current.caPem !== ca.certPem || !issuedBy(cert, new X509Certificate(ca.certPem))) return undefined;
    return renewalTime(current.certPem);
  } catch {
    return undefined;
  }
}
