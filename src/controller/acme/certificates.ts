/**
 * The certificates the controller obtained through ACME (spec.acme): one Secret per Gateway and
 * hostname in the controller's namespace (kubernetes.io/tls, labelled with the Gateway and
 * ACME_COMPONENT), read back and checked here. Pure: the reconciler passes the cached Secrets.
 */
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import type { AcmeCertificateStatus } from '../../crds/types.ts';
import { hostnameMatches, parseSubjectAltName } from '../../pki/grants.ts';
import { secretText } from '../runtime/apply.ts';

/** app.kubernetes.io/component of the certificate Secrets. */
export const ACME_COMPONENT = 'acme-certificate';
/** The hostname a certificate Secret was ordered for. */
export const ACME_HOSTNAME_ANNOTATION = 'webgw.io/acme-hostname';
/** Renew at two thirds of the certificate's life (Let's Encrypt: day 60 of 90). */
export const RENEW_AT_FRACTION = 2 / 3;

export interface AcmeCertificate {
  hostname: string;
  secretName: string;
  certPem: string;
  keyPem: string;
  status: AcmeCertificateStatus;
}

export function acmeSecretName(gateway: string, hostname: string): string {
  return `webgw-gw-${gateway}-acme-${createHash('sha256').update(hostname).digest('hex').slice(0, 16)}`;
}

export function acmeAccountSecretName(gateway: string): string {
  return `webgw-gw-${gateway}-acme-account`;
}

const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A certificate Secret's content, when checkCertificatePair finds it good. */
export function readAcmeCertificate(secret: V1Secret, now: Date): AcmeCertificate | undefined {
  const hostname = secret.metadata?.annotations?.[ACME_HOSTNAME_ANNOTATION];
  const certPem = secretText(secret, 'tls.crt');
  const keyPem = secretText(secret, 'tls.key');
  if (!hostname || !certPem || !keyPem) return undefined;
  const status = checkCertificatePair(hostname, certPem, keyPem, now);
  return status ? { hostname, secretName: secret.metadata?.name ?? '', certPem, keyPem, status } : undefined;
}

/**
 * The state of a certificate obtained for `hostname`, when it is a pair with the key, covers the
 * name and is valid now; undefined otherwise (then the name is ordered again).
 */
export function checkCertificatePair(
  hostname: string,
  certPem: string,
  keyPem: string,
  now: Date,
): AcmeCertificateStatus | undefined {
  try {
    const leaf = new X509Certificate(certPem);
    if (!leaf.checkPrivateKey(createPrivateKey(keyPem))) return undefined;
    const names = parseSubjectAltName(leaf.subjectAltName)
      .filter((e) => e.type === 'DNS')
      .map((e) => e.value.toLowerCase());
    if (!names.some((n) => hostnameMatches(n, hostname))) return undefined;
    const notBefore = new Date(leaf.validFrom);
    const notAfter = new Date(leaf.validTo);
    if (now < notBefore || now >= notAfter) return undefined;
    const renewAt = new Date(notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) * RENEW_AT_FRACTION);
    return { hostname, notAfter: iso(notAfter), renewAt: iso(renewAt), issuer: leaf.issuer.replace(/\n/g, ', ') };
  } catch {
    return undefined;
  }
}
