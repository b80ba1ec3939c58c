/**
 * Certificate issuance with node-forge. Keys come from Node's native generator (forge's pure-JS
 * RSA key generation takes seconds); forge builds and signs the certificates.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { grantsToUris, type GrantSet } from './grants.ts';

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

function newKeyPair(): { publicKey: forge.pki.rsa.PublicKey; privateKey: forge.pki.rsa.PrivateKey; keyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return {
    publicKey: forge.pki.publicKeyFromPem(publicKey),
    privateKey: forge.pki.privateKeyFromPem(privateKey),
    keyPem: privateKey,
  };
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

function sign(cert: forge.pki.Certificate, key: forge.pki.rsa.PrivateKey): string {
  cert.sign(key, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

export function createCA(commonName: string, validity: Validity): KeyPairPem {
  const { publicKey, privateKey, keyPem } = newKeyPair();
  const cert = newCertificate(publicKey, validity);
  const subject = [{ name: 'commonName', value: commonName }, { name: 'organizationName', value: 'WebGW' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  return { certPem: sign(cert, privateKey), keyPem };
}

interface Issuer {
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
}

function loadIssuer(ca: KeyPairPem): Issuer {
  return { cert: forge.pki.certificateFromPem(ca.certPem), key: forge.pki.privateKeyFromPem(ca.keyPem) as forge.pki.rsa.PrivateKey };
}

function issueLeaf(ca: KeyPairPem, commonName: string, validity: Validity, usage: 'server' | 'client', altNames: object[]): KeyPairPem {
  const issuer = loadIssuer(ca);
  const { publicKey, keyPem } = newKeyPair();
  const cert = newCertificate(publicKey, validity);
  cert.setSubject([{ name: 'commonName', value: commonName.slice(0, 64) }]);
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
  return { certPem: sign(cert, issuer.key), keyPem };
}

/** The gateway's tunnel server certificate: serverAuth only, for the given names and IPs. */
export function issueServerCertificate(ca: KeyPairPem, hosts: readonly string[], validity: Validity): KeyPairPem {
  const altNames = hosts.map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h }));
  return issueLeaf(ca, hosts[0] ?? 'webgw-gateway', validity, 'server', altNames);
}

/** An agent certificate: clientAuth only, carrying its grants as SAN URIs. */
export function issueAgentCertificate(ca: KeyPairPem, grants: GrantSet, validity: Validity): KeyPairPem {
  const uris = grantsToUris(grants);
  const altNames = uris.map((value) => ({ type: 6, value }));
  return issueLeaf(ca, grants.identity || 'webgw-agent', validity, 'client', altNames);
}
