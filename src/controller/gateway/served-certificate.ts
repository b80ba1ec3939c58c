/**
 * The farmer's certificate for a Gateway's domain (`spec.tls.certificateRef`, a
 * `kubernetes.io/tls` Secret as cert-manager keeps one): checked here, copied by the reconciler
 * into the proxy pods' certificates Secret, and reported in `status.certificate` and the
 * CertificateReady condition. The names it covers decide which hostnames get HTTPS grants
 * (exposedservice/claims.ts). Pure: the reconciler reads the Secret and passes it in.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import { describeError } from '../../common/errors.ts';
import type { GatewayCertificateStatus, GatewayStatus } from '../../crds/types.ts';
import { hostnameMatches, normalizeHostname, parseSubjectAltName } from '../../pki/grants.ts';
import { secretText } from '../runtime/apply.ts';

/** The whole Secret is copied to the edge: bound what a farmer's Secret may weigh there. */
const MAX_PEM_BYTES = 64 * 1024;

export type InspectedCertificate =
  | { ready: true; certPem: string; keyPem: string; status: GatewayCertificateStatus; message: string }
  | { ready: false; reason: 'SecretNotFound' | 'CertificateInvalid' | 'CertificateExpired'; message: string };

export function inspectCertificate(
  secret: V1Secret | undefined,
  ref: { name: string; namespace: string },
  domain: string | undefined,
  now: Date,
): InspectedCertificate {
  const where = `Secret ${ref.namespace}/${ref.name}`;
  if (!secret)
    return {
      ready: false,
      reason: 'SecretNotFound',
      message: `${where} does not exist (or the controller cannot read it)`,
    };
  const certPem = secretText(secret, 'tls.crt');
  const keyPem = secretText(secret, 'tls.key');
  if (!certPem || !keyPem)
    return { ready: false, reason: 'CertificateInvalid', message: `${where} has no tls.crt and tls.key` };
  if (certPem.length + keyPem.length > MAX_PEM_BYTES)
    return {
      ready: false,
      reason: 'CertificateInvalid',
      message: `${where} holds more than ${MAX_PEM_BYTES} bytes of PEM`,
    };
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certPem);
    if (!leaf.checkPrivateKey(createPrivateKey(keyPem)))
      return { ready: false, reason: 'CertificateInvalid', message: `${where}: tls.key does not belong to tls.crt` };
  } catch (err) {
    return { ready: false, reason: 'CertificateInvalid', message: `${where}: ${describeError(err)}` };
  }
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (now < notBefore || now > notAfter) {
    return {
      ready: false,
      reason: 'CertificateExpired',
      message: `${where} is valid from ${notBefore.toISOString()} to ${notAfter.toISOString()}`,
    };
  }
  const names = parseSubjectAltName(leaf.subjectAltName)
    .filter((e) => e.type === 'DNS')
    .flatMap((e) => {
      try {
        return [normalizeHostname(e.value)];
      } catch {
        return [];
      }
    });
  const wildcard = domain ? `*.${domain}` : undefined;
  if (wildcard && !names.some((n) => hostnameMatches(n, `x.${domain}`))) {
    return {
      ready: false,
      reason: 'CertificateInvalid',
      message: `${where} does not cover ${wildcard} (it names ${names.join(', ') || 'no DNS name'})`,
    };
  }
  const issuer = leaf.issuer.replace(/\n/g, ', ');
  return {
    ready: true,
    certPem,
    keyPem,
    status: {
      secret: `${ref.namespace}/${ref.name}`,
      names,
      notAfter: notAfter.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      issuer,
    },
    message: `serving ${names.join(', ')} until ${notAfter.toISOString()} (issuer ${issuer})`,
  };
}

/**
 * True when the Gateway serves HTTPS for `hostname`, as its status reports it: its spec.tls
 * certificate covers the name, or spec.acme obtained one for it (the reconciler lists only
 * certificates valid now, and comes back when one expires).
 */
export function gatewayServesHttps(status: GatewayStatus | undefined, hostname: string): boolean {
  const ready = status?.conditions?.some((c) => c.type === 'CertificateReady' && c.status === 'True') === true;
  if (ready && (status?.certificate?.names ?? []).some((n) => hostnameMatches(n, hostname))) return true;
  return (status?.acme?.certificates ?? []).some((c) => c.hostname === hostname);
}
