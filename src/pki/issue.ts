/**
 * Certificate issuance. node-forge builds the X.509 structures; keys and signatures come from
 * Node's native crypto (forge's pure-JS RSA takes ~1 s per signature under Jest's VM and tens
 * of milliseconds elsewhere; native signing takes about one).
 */
import { constants, generateKeyPairSync, privateEncrypt, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { SESSION_READER_GRANT, grantsToUris, type GrantSet } from './grants.ts';

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

export interface Validity {
  /** Start of validity; defaults to now minus 5 minutes (clock skew). */
  notBefore?: Date;
  notAfter: Date;
}

const SKEW_MS = 5 * 60 * 1000;

/** DER prefix of a SHA-256 DigestInfo (RFC 8017 §9.2, note 1). */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/** Signs like forge's RSA key (PKCS#1 v1.5 over the forge digest), with Node's native RSA. */
function nativeSigner(keyPem: string): forge.pki.rsa.PrivateKey {
  const sign = (md: forge.md.MessageDigest): string => {
    const digestInfo = Buffer.concat([SHA256_DIGEST_INFO, Buffer.from(md.digest().getBytes(), 'binary')]);
    return privateEncrypt({ key: keyPem, padding: constants.RSA_PKCS1_PADDING }, digestInfo).toString('binary');
  };
  return { sign } as unknown as forge.pki.rsa.PrivateKey;
}

function newKeyPair(): { publicKey: forge.pki.rsa.PublicKey; keyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { publicKey: forge.pki.publicKeyFromPem(publicKey), keyPem: privateKey };
}

function newCertificate(publicKey: forge.pki.rsa.PublicKey, validity: Validity): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // 16 random bytes, top bit clear so the DER INTEGER stays positive (RFC 5280 §4.1.2.2).
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = validity.notBefore ?? new Date(Date.now() - SKEW_MS);
  cert.validity.notAfter = validity.notAfter;
  return cert;
}

function sign(cert: forge.pki.Certificate, keyPem: string): string {
  cert.sign(nativeSigner(keyPem), forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

export function createCA(commonName: string, validity: Validity): KeyPairPem {
  const { publicKey, keyPem } = newKeyPair();
  const cert = newCertificate(publicKey, validity);
  const subject = [{ name: 'commonName', value: commonName }, { name: 'organizationName', value: 'WebGW' }];
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
}

function loadIssuer(ca: KeyPairPem): Issuer {
  return { cert: forge.pki.certificateFromPem(ca.certPem), keyPem: ca.keyPem };
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

function issueLeaf(ca: KeyPairPem, subject: forge.pki.CertificateField[], validity: Validity, usage: 'server' | 'client', altNames: object[]): KeyPairPem {
  const issuer = loadIssuer(ca);
  const { publicKey, keyPem } = newKeyPair();
  const cert = newCertificate(publicKey, validity);
  cert.setSubject(subject);
  cert.setIssuer(issuer.cert.subject.attributes);
  // Same key id as forge's subjectKeyIdentifier on the CA (SHA-1 of the RSAPublicKey), so chains link.
  const caKeyId = issuer.cert.generateSubjectKeyIdentifier().getBytes();
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: usage === 'server', clientAuth: usage === 'client' },
    { name: 'subjectAltName', altNames },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caKeyId },
  ]);
  return { certPem: sign(cert, issuer.keyPem), keyPem };
}

/** The gateway's tunnel server certificate: serverAuth only, for the given names and IPs. */
export function issueServerCertificate(ca: KeyPairPem, hosts: readonly string[], validity: Validity): KeyPairPem {
  return issueCertificate(ca, { commonName: hosts[0] ?? 'webgw-gateway', usage: 'server', hosts }, validity);
}

/** An agent certificate: clientAuth only, carrying its grants as SAN URIs. */
export function issueAgentCertificate(ca: KeyPairPem, grants: GrantSet, validity: Validity): KeyPairPem {
  return issueCertificate(ca, { commonName: grants.identity || 'webgw-agent', usage: 'client', uris: grantsToUris(grants) }, validity);
}

/** The controller's certificate for reading one gateway's session table (verify.ts). */
export function issueSessionReaderCertificate(ca: KeyPairPem, validity: Validity): KeyPairPem {
  return issueCertificate(ca, { commonName: 'webgw-controller session reader', usage: 'client', uris: [SESSION_READER_GRANT] }, validity);
}
