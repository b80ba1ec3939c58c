/**
 * When a certificate should be replaced: at two thirds of its lifetime (design: Trust model),
 * the one rule for the gateway's tunnel certificate, agent certificates and the webhook's.
 */
import { X509Certificate } from 'node:crypto';

export function renewalTime(certPem: string): Date {
  const cert = new X509Certificate(certPem);
  const from = new Date(cert.validFrom).getTime();
  const to = new Date(cert.validTo).getTime();
  return new Date(from + ((to - from) * 2) / 3);
}
