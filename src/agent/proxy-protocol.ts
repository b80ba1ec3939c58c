/**
 * PROXY protocol headers towards the backend, so it sees the public client's address
 * (HAProxy PROXY protocol spec, versions 1 and 2).
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { OpenRequest } from '../tunnel/open.ts';

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

export function proxyHeaderV1(open: Pick<OpenRequest, 'client' | 'local'>): Buffer {
  const { client, local } = open;
  if (isIPv4(client.address) && isIPv4(local.address)) {
    return Buffer.from(`PROXY TCP4 ${client.address} ${local.address} ${client.port} ${local.port}\r\n`, 'latin1');
  }
  if (isIPv6(client.address) && isIPv6(local.address)) {
    return Buffer.from(`PROXY TCP6 ${client.address} ${local.address} ${client.port} ${local.port}\r\n`, 'latin1');
  }
  return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
}

export function proxyHeaderV2(open: Pick<OpenRequest, 'client' | 'local'>): Buffer {
  const { client, local } = open;
  const v4 = isIPv4(client.address) && isIPv4(local.address);
  const v6 = isIPv6(client.address) && isIPv6(local.address);
  if (!v4 && !v6) {
    // LOCAL command, unspecified family: the backend uses the real connection's addresses.
    return Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  }
  const addrLen = v4 ? 12 : 36;
  const out = Buffer.alloc(16 + addrLen);
  V2_SIGNATURE.copy(out, 0);
  out[12] = 0x21; // version 2, PROXY
  out[13] = v4 ? 0x11 : 0x21; // TCP over IPv4 / IPv6
  out.writeUInt16BE(addrLen, 14);
  const src = v4 ? ipv4Bytes(client.address) : ipv6Bytes(client.address);
  const dst = v4 ? ipv4Bytes(local.address) : ipv6Bytes(local.address);
  src.copy(out, 16);
  dst.copy(out, 16 + src.length);
  out.writeUInt16BE(client.port, 16 + 2 * src.length);
  out.writeUInt16BE(local.port, 18 + 2 * src.length);
  return out;
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

function ipv6Bytes(address: string): Buffer {
  let text = address;
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    // Embedded IPv4 (::ffff:1.2.3.4) becomes two hex groups.
    const b = ipv4Bytes(last);
    text = `${text.slice(0, lastColon + 1)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  const out = Buffer.alloc(16);
  [...left, ...zeros, ...right].slice(0, 8).forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
