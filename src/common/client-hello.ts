/**
 * Reads the SNI (RFC 6066 §3) and the ALPN protocols offered (RFC 7301 §3.1) from a TLS
 * ClientHello (RFC 8446 §4.1.2) without terminating TLS: the gateway routes by the name, the
 * agent tells an ACME TLS-ALPN-01 validation (`acme-tls/1`, RFC 8737) from a client. The hello
 * may span several records; the caller bounds the bytes it feeds (MAX_HELLO_BYTES).
 */
import { WebgwError } from './errors.ts';

export const MAX_HELLO_BYTES = 16 * 1024;

export type HelloResult = { state: 'more' } | { state: 'done'; sni: string | undefined; alpn: string[] };

const fail = (why: string): never => {
  throw new WebgwError('WEBGW_ERR_CLIENT_HELLO', `malformed ClientHello: ${why}`);
};

/** Parses what has arrived so far; 'more' means "feed me more bytes". */
export function parseClientHello(data: Buffer): HelloResult {
  // Reassemble the handshake bytes from consecutive handshake records.
  const parts: Buffer[] = [];
  let offset = 0;
  let handshakeBytes = 0;
  let needed = -1;
  while (offset + 5 <= data.length) {
    if (data[offset] !== 22) fail(`record type ${data[offset]} is not handshake`);
    if (data[offset + 1] !== 3) fail('not a TLS record');
    const length = data.readUInt16BE(offset + 3);
    if (length === 0 || length > 16384) fail(`record length ${length}`);
    if (offset + 5 + length > data.length) break;
    parts.push(data.subarray(offset + 5, offset + 5 + length));
    handshakeBytes += length;
    offset += 5 + length;
    if (needed < 0 && handshakeBytes >= 4) {
      const hs = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
      if (hs[0] !== 1) fail(`handshake type ${hs[0]} is not ClientHello`);
      needed = 4 + hs.readUIntBE(1, 3);
      if (needed > MAX_HELLO_BYTES) fail(`ClientHello of ${needed} bytes is too large`);
    }
    if (needed >= 0 && handshakeBytes >= needed) break;
  }
  if (data.length >= 5 && data[0] !== 22) fail(`record type ${data[0]} is not handshake`);
  if (needed < 0 || handshakeBytes < needed) {
    if (data.length >= MAX_HELLO_BYTES) fail('ClientHello too large');
    return { state: 'more' };
  }
  const hello = Buffer.concat(parts).subarray(4, needed);
  return { state: 'done', ...readExtensions(hello) };
}

function readExtensions(hello: Buffer): { sni: string | undefined; alpn: string[] } {
  let sni: string | undefined;
  const alpn: string[] = [];
  let o = 2 + 32; // legacy_version, random
  const need = (n: number): void => {
    if (o + n > hello.length) fail('truncated');
  };
  need(1);
  o += 1 + (hello[o] as number); // session id
  need(2);
  o += 2 + hello.readUInt16BE(o); // cipher suites
  need(1);
  o += 1 + (hello[o] as number); // compression methods
  if (o === hello.length) return { sni, alpn }; // no extensions at all
  need(2);
  const end = o + 2 + hello.readUInt16BE(o);
  o += 2;
  if (end > hello.length) fail('extensions overrun');
  while (o + 4 <= end) {
    const type = hello.readUInt16BE(o);
    const len = hello.readUInt16BE(o + 2);
    o += 4;
    if (o + len > end) fail('extension overruns');
    const ext = hello.subarray(o, o + len);
    if (type === 0 && sni === undefined) sni = readServerName(ext);
    if (type === 16 && alpn.length === 0) alpn.push(...readProtocols(ext));
    o += len;
  }
  return { sni, alpn };
}

function readServerName(ext: Buffer): string | undefined {
  if (ext.length < 2) fail('server_name list truncated');
  let p = 2;
  while (p + 3 <= ext.length) {
    const nameType = ext[p] as number;
    const nameLen = ext.readUInt16BE(p + 1);
    p += 3;
    if (p + nameLen > ext.length) fail('server name overruns');
    if (nameType === 0) return ext.toString('latin1', p, p + nameLen);
    p += nameLen;
  }
  return undefined;
}

/** ProtocolNameList: a 2-byte length, then names of 1..255 bytes, each after its 1-byte length. */
function readProtocols(ext: Buffer): string[] {
  if (ext.length < 2 || ext.readUInt16BE(0) !== ext.length - 2) fail('ALPN list length');
  const out: string[] = [];
  for (let p = 2; p < ext.length;) {
    const len = ext[p] as number;
    if (len === 0 || p + 1 + len > ext.length) fail('ALPN protocol name overruns');
    out.push(ext.toString('latin1', p + 1, p + 1 + len));
    p += 1 + len;
  }
  return out;
}

/** A fatal TLS alert record (RFC 8446 §6): unrecognized_name (112) or handshake_failure (40). */
export function tlsAlert(description: 'unrecognized_name' | 'handshake_failure' | 'internal_error'): Buffer {
  const code = { unrecognized_name: 112, handshake_failure: 40, internal_error: 80 }[description];
  return Buffer.from([21, 3, 3, 0, 2, 2, code]);
}
