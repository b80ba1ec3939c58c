/**
 * The certificates the gateway terminates TLS with (https and tls-terminated routes): a folder
 * of `<name>.crt` + `<name>.key` PEM pairs, the chain after the leaf, as a Kubernetes Secret
 * volume or any other writer leaves them. Each pair is checked when loaded (the key matches, the
 * certificate has DNS names and is valid now); a pair that fails is skipped and logged, the rest
 * are served. A hostname gets the certificate naming it exactly, else the wildcard covering it;
 * of several, the one valid longest. `reload()` swaps the whole set at once: new handshakes get
 * the new certificates, connections already open keep theirs.
 *
 * Bounded: at most MAX_CERTIFICATES pairs of at most MAX_FILE_BYTES each.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { WebgwError, describeError } from '../common/errors.ts';
import { hostnameMatches, normalizeHostname, parseSubjectAltName } from '../pki/grants.ts';

export const MAX_CERTIFICATES = 10_000;
export const MAX_FILE_BYTES = 64 * 1024;
const PAIR = /^([A-Za-z0-9][A-Za-z0-9._-]{0,200})\.crt$/;

export interface ServedCertificate {
  /** The pair's name (`<name>.crt`). */
  readonly name: string;
  /** DNS names of the certificate, lower case (`*.example.com` for a wildcard). */
  readonly names: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly issuer: string;
  /** Built on first use: a gateway may hold many certificates and serve few of them. */
  context(): SecureContext;
}

export interface LoadResult {
  loaded: number;
  skipped: Array<{ name: string; why: string }>;
}

export class CertificateStore {
  private readonly dir: string;
  private byName = new Map<string, ServedCertificate>();

  constructor(dir: string) {
    this.dir = dir;
  }

  /** The pairs' files as they are now: what a FileWatcher watches. */
  async files(): Promise<string[]> {
    const names = await pairNames(this.dir);
    return names.flatMap((n) => [join(this.dir, `${n}.crt`), join(this.dir, `${n}.key`)]);
  }

  /** Reads the folder again and replaces the served set; a missing folder serves nothing. */
  async reload(now: Date): Promise<LoadResult> {
    const result: LoadResult = { loaded: 0, skipped: [] };
    const byName = new Map<string, ServedCertificate>();
    let names = await pairNames(this.dir);
    if (names.length > MAX_CERTIFICATES) {
      result.skipped.push({
        name: `${names.length - MAX_CERTIFICATES} more`,
        why: `more than ${MAX_CERTIFICATES} certificates`,
      });
      names = names.slice(0, MAX_CERTIFICATES);
    }
    for (const name of names) {
      let cert: ServedCertificate;
      try {
        cert = await loadPair(this.dir, name, now);
      } catch (err) {
        result.skipped.push({ name, why: describeError(err) });
        continue;
      }
      result.loaded++;
      for (const host of cert.names) {
        const held = byName.get(host);
        if (!held || held.notAfter < cert.notAfter) byName.set(host, cert);
      }
    }
    this.byName = byName;
    return result;
  }

  /** The certificate to serve `hostname` with, if one covers it and is valid at `now`. */
  find(hostname: string, now: Date): ServedCertificate | undefined {
    const valid = (c: ServedCertificate | undefined): ServedCertificate | undefined =>
      c && c.notBefore <= now && now <= c.notAfter ? c : undefined;
    const exact = valid(this.byName.get(hostname));
    if (exact) return exact;
    const dot = hostname.indexOf('.');
    if (dot <= 0) return undefined;
    const wildcard = `*${hostname.slice(dot)}`;
    return hostnameMatches(wildcard, hostname) ? valid(this.byName.get(wildcard)) : undefined;
  }

  get size(): number {
    return new Set(this.byName.values()).size;
  }
}

/** True when `cert` names `hostname` (a request's Host on a connection that `cert` terminated). */
export function certificateCovers(cert: ServedCertificate, hostname: string): boolean {
  return cert.names.some((n) => hostnameMatches(n, hostname));
}

async function pairNames(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const present = new Set(entries);
  return entries
    .flatMap((e) => {
      const name = PAIR.exec(e)?.[1];
      return name && present.has(`${name}.key`) ? [name] : [];
    })
    .sort();
}

async function readBounded(file: string): Promise<string> {
  const data = await readFile(file);
  if (data.length > MAX_FILE_BYTES)
    throw new WebgwError('WEBGW_ERR_CERT_INVALID', `${file} is larger than ${MAX_FILE_BYTES} bytes`);
  return data.toString('utf8');
}

async function loadPair(dir: string, name: string, now: Date): Promise<ServedCertificate> {
  const certPem = await readBounded(join(dir, `${name}.crt`));
  const keyPem = await readBounded(join(dir, `${name}.key`));
  const leaf = new X509Certificate(certPem);
  if (!leaf.checkPrivateKey(createPrivateKey(keyPem)))
    throw new WebgwError('WEBGW_ERR_CERT_INVALID', 'the key does not belong to the certificate');
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (now > notAfter) throw new WebgwError('WEBGW_ERR_CERT_EXPIRED', `expired on ${notAfter.toISOString()}`);
  if (now < notBefore) throw new WebgwError('WEBGW_ERR_CERT_EXPIRED', `not valid before ${notBefore.toISOString()}`);
  const names = parseSubjectAltName(leaf.subjectAltName)
    .filter((e) => e.type === 'DNS')
    .flatMap((e) => {
      try {
        return [normalizeHostname(e.value)];
      } catch {
        return [];
      }
    });
  if (names.length === 0) throw new WebgwError('WEBGW_ERR_CERT_INVALID', 'the certificate names no DNS hostname');
  let context: SecureContext | undefined;
  return {
    name,
    names,
    notBefore,
    notAfter,
    issuer: leaf.issuer.replace(/\n/g, ', '),
    context: () => (context ??= createSecureContext({ cert: certPem, key: keyPem, minVersion: 'TLSv1.2' })),
  };
}
