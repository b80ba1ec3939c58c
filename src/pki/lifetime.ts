/**
 * When a certificate should be replaced: at two thirds of its lifetime (docs/architecture.md, Trust model),
 * the one rule for the gateway's tunnel certificate, agent certificates and the webhook's.
 */
import { X509Certificate } from 'node:crypto';

/** Renewal times by certificate (PEM): reconciles ask for every certificate each time. */
const known = new Map<string, number>();
const MAX_KNOWN = 20_000;

export function renewalTime(certPem: string): Date {
  let at = known.get(certPem);
  if (at === undefined) {
    const cert = new X509Certificate(certPem);
    const from = new Date(cert.validFrom).getTime();
    const to = new Date(cert.validTo).getTime();
    at = from + ((to - from) * 2) / 3;
    if (known.size >= MAX_KNOWN) known.delete(known.keys().next().value as string);
    known.set(certPem, at);
  }
  return new Date(at);
}
