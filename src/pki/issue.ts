/**
 * Certificate issuance. node-forge builds the X.509 structures; keys and signatures come from
 * Node's native crypto (forge's pure-JS RSA takes ~1 s per signature under Jest's VM).
 *
 * CAs keep RSA-2048 keys (agents pin existing CAs; a CA is made once). Leaf certificates get
 * ECDSA P-256 keys: generating one takes ~0.1 ms where RSA-2048 takes ~100 ms of event loop, and
 * the controller issues one per ExposedService and gateway (issue 15: RSA key generation was a
 * quarter of the controller's CPU in a 1,000-service burst). forge encodes only RSA keys, so a
 * leaf is built with a placeholder RSA key whose SubjectPublicKeyInfo is then replaced by the
 * real one before the CA signs the TBSCertificate.
 */
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  sign as cryptoSign,
  type KeyObject,
} from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { WebgwError } from '../common/errors.ts';
import { grantsToUris, type ControllerGrant, type GrantSet } from './grants.ts';

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

export interface Validity {
  /** Start of validity; defaults to now minus CLOCK_SKEW_MS. */
  notBefore?: Date;
  notAfter: Date;
}

/**
 * How far the clocks of the controller, gateways and agents may disagree: a certificate is valid
 * from this long before it was issued, so a peer whose clock is behind accepts it at once.
 */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

/** Valid from `now` (less the clock skew) for `lifetimeMs`. */
export function validFor(now: Date, lifetimeMs: number): Validity {
  return { notBefore: new Date(now.getTime() - CLOCK_SKEW_MS), notAfter: new Date(now.getTime() + lifetimeMs) };
}

/** Stands in for a leaf's EC key while forge builds the TBSCertificate (replaced before signing). */
const PLACEHOLDER_KEY = forge.pki.setRsaPublicKey(new forge.jsbn.BigInteger('3'), new forge.jsbn.BigInteger('3'));
const PLACEHOLDER_SPKI_DER = forge.asn1.toDer(forge.pki.publicKeyToAsn1(PLACEHOLDER_KEY)).getBytes();

function newCaKeyPair(): { publicKey: forge.pki.rsa.PublicKey; keyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { publicKey: forge.pki.publicKeyFromPem(publicKey), keyPem: privateKey };
}

function newLeafKeyPair(): { spki: forge.asn1.Asn1; keyId: string; keyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const spki = forge.asn1.fromDer(forge.util.createBuffer(der.toString('binary')));
  // RFC 5280 §4.2.1.2 (1): SHA-1 of the subjectPublicKey BIT STRING's bits.
  const bits = Buffer.from(((spki.value as forge.asn1.Asn1[])[1]!.value as string).slice(1), 'binary');
  return {
    spki,
    keyId: createHash('sha1').update(bits).digest('binary'),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

function newCertificate(publicKey: forge.pki.rsa.PublicKey, validity: Validity): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // 16 bytes, 126 of them random: the first byte in 0x40–0x7f keeps the DER INTEGER positive and
  // minimal (RFC 5280 §4.1.2.2). With only the top bit cleared, 1 serial in 256 began 00 0x, which
  // is not DER: strict parsers (Go's crypto/x509, so kube-apiserver verifying a webhook) refuse it.
  const serial = randomBytes(16);
  serial[0] = ((serial[0] as number) & 0x3f) | 0x40;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = validity.notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS);
  cert.validity.notAfter = validity.notAfter;
  return cert;
}

/**
 * Signs with the issuer's RSA key (sha256WithRSAEncryption, Node's native RSA), putting `spki`
 * in place of the placeholder key first when given.
 */
function sign(cert: forge.pki.Certificate, issuerKey: string | KeyObject, spki?: forge.asn1.Asn1): string {
  const oid = forge.pki.oids.sha256WithRSAEncryption as string;
  cert.signatureOid = oid;
  (cert.siginfo as { algorithmOid: string }).algorithmOid = oid;
  // Not in @types/node-forge; forge's own cert.sign() calls it the same way.
  const tbs = (
    forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }
  ).getTBSCertificate(cert);
  if (spki) {
    const fields = tbs.value as forge.asn1.Asn1[];
    const at = fields.findIndex((f) => forge.asn1.toDer(f).getBytes() === PLACEHOLDER_SPKI_DER);
    if (at < 0) throw new WebgwError('WEBGW_ERR_CERT_INVALID', 'placeholder key not found in the TBSCertificate');
    fields[at] = spki;
  }
  (cert as { tbsCertificate?: forge.asn1.Asn1 }).tbsCertificate = tbs;
  const signature = cryptoSign('sha256', Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary'), issuerKey);
  cert.signature = signature.toString('binary');
  return forge.pki.certificateToPem(cert);
}

export function createCA(commonName: string, validity: Validity): KeyPairPem {
  const { publicKey, keyPem } = newCaKeyPair();
  const cert = newCertificate(publicKey, validity);
  const subject = [
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: 'WebGW' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  return { certPem: sign(cert, keyPem), keyPem };
}

interface Issuer {
  cert: forge.pki.Certificate;
  keyPem: string;
  /** The CA's subject key identifier: its leaves' authority key identifier. */
  keyId: string;
  /** The CA's private key, parsed (parsing the PEM costs as much as a signature). */
  key: KeyObject;
}

/** Parsed CAs by certificate (forge's parsing is pure JS: once per CA, not once per leaf). */
const issuers = new Map<string, Issuer>();
const MAX_ISSUERS = 256;

function loadIssuer(ca: KeyPairPem): Issuer {
  const known = issuers.get(ca.certPem);
  if (known && known.keyPem === ca.keyPem) return known;
  const cert = forge.pki.certificateFromPem(ca.certPem);
  // Same key id as forge's subjectKeyIdentifier on the CA (SHA-1 of the RSAPublicKey), so chains link.
  const issuer = {
    cert,
    keyPem: ca.keyPem,
    keyId: cert.generateSubjectKeyIdentifier().getBytes(),
    key: createPrivateKey(ca.keyPem),
  };
  if (issuers.size >= MAX_ISSUERS) issuers.delete(issuers.keys().next().value as string);
  issuers.set(ca.certPem, issuer);
  return issuer;
}

export interface LeafSpec {
  commonName: string;
  /** Subject O= values (Kubernetes reads them as groups of a client certificate). */
  organizations?: readonly string[];
  usage: 'server' | 'client';
  /** DNS names and IP addresses. */
  hosts?: readonly string[];
  uris?: readonly string[];
}

/** A leaf certificate for one purpose (serverAuth or clientAuth), never a CA. */
export function issueCertificate(ca: KeyPairPem, spec: LeafSpec, validity: Validity): KeyPairPem {
  const altNames = [
    ...(spec.hosts ?? []).map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h })),
    ...(spec.uris ?? []).map((value) => ({ type: 6, value })),
  ];
  const subject = [
    { name: 'commonName', value: spec.commonName.slice(0, 64) },
    ...(spec.organizations ?? []).map((value) => ({ name: 'organizationName', value })),
  ];
  return issueLeaf(ca, subject, validity, spec.usage, altNames);
}

function issueLeaf(
  ca: KeyPairPem,
  subject: forge.pki.CertificateField[],
  validity: Validity,
  usage: 'server' | 'client',
  altNames: object[],
): KeyPairPem {
  const issuer = loadIssuer(ca);
  const key = newLeafKeyPair();
  const cert = newCertificate(PLACEHOLDER_KEY, validity);
  cert.setSubject(subject);
  cert.setIssuer(issuer.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: usage === 'server', clientAuth: usage === 'client' },
    { name: 'subjectAltName', altNames },
    {
      name: 'subjectKeyIdentifier',
      value: forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OCTETSTRING, false, key.keyId),
    },
    { name: 'authorityKeyIdentifier', keyIdentifier: issuer.keyId },
  ]);
  return { certPem: sign(cert, issuer.key, key.spki), keyPem: key.keyPem };
}

/** The gateway's tunnel server certificate: serverAuth only, for the given names and IPs. */
export function issueServerCertificate(ca: KeyPairPem, hosts: readonly string[], validity: Validity): KeyPairPem {
  return issueCertificate(ca, { commonName: hosts[0] ?? 'webgw-gateway', usage: 'server', hosts }, validity);
}

/** An agent certificate: clientAuth only, carrying its grants as SAN URIs. */
export function issueAgentCertificate(ca: KeyPairPem, grants: GrantSet, validity: Validity): KeyPairPem {
  return issueCertificate(
    ca,
    { commonName: grants.identity || 'webgw-agent', usage: 'client', uris: grantsToUris(grants) },
    validity,
  );
}

/** A certificate for one thing the controller does on one gateway (verify.ts verifyControllerCertificate). */
export function issueControllerCertificate(ca: KeyPairPem, grant: ControllerGrant, validity: Validity): KeyPairPem {
  return issueCertificate(ca, { commonName: `webgw-controller ${grant}`, usage: 'client', uris: [grant] }, validity);
}
