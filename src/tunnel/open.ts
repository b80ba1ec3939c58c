/**
 * The OPEN payload: which route the stream is for and who the client is, so the agent can pick
 * the backend and write a PROXY protocol header (docs/architecture.md, Tunnel).
 *
 *   u8 protocol | u32 initial window | u16 route port | u16 client port | u16 local port
 *   | u8 len + client address | u8 len + local address | u8 len + hostname
 */
import { isIP } from 'node:net';
import { WebgwError } from '../common/errors.ts';

export type RouteProtocol = 'http' | 'tls' | 'tcp';
const protocolCodes: Record<RouteProtocol, number> = { http: 1, tls: 2, tcp: 3 };
const protocolNames: Record<number, RouteProtocol> = { 1: 'http', 2: 'tls', 3: 'tcp' };

export interface Endpoint {
  address: string;
  port: number;
}

export interface OpenRequest {
  protocol: RouteProtocol;
  /** HTTP Host or TLS SNI, lower case; empty for TCP. */
  hostname: string;
  /** The public port the client connected to (the granted port for TCP). */
  port: number;
  /** The client as the gateway saw it. */
  client: Endpoint;
  /** The gateway address the client connected to (PROXY protocol destination). */
  local: Endpoint;
}

export interface OpenPayload extends OpenRequest {
  initialWindow: number;
}

const FIXED_BYTES = 1 + 4 + 2 + 2 + 2;

export function encodeOpen(open: OpenPayload): Buffer {
  const client = Buffer.from(open.client.address, 'latin1');
  const local = Buffer.from(open.local.address, 'latin1');
  const host = Buffer.from(open.hostname, 'latin1');
  for (const [name, b] of [
    ['client address', client],
    ['local address', local],
    ['hostname', host],
  ] as const) {
    if (b.length > 255) throw new WebgwError('WEBGW_ERR_PROTOCOL', `${name} longer than 255 bytes`);
  }
  const out = Buffer.allocUnsafe(FIXED_BYTES + 3 + client.length + local.length + host.length);
  let o = 0;
  o = out.writeUInt8(protocolCodes[open.protocol], o);
  o = out.writeUInt32BE(open.initialWindow, o);
  o = out.writeUInt16BE(open.port, o);
  o = out.writeUInt16BE(open.client.port, o);
  o = out.writeUInt16BE(open.local.port, o);
  for (const b of [client, local, host]) {
    o = out.writeUInt8(b.length, o);
    o += b.copy(out, o);
  }
  return out;
}

export function decodeOpen(payload: Buffer): OpenPayload {
  const fail = (why: string): never => {
    throw new WebgwError('WEBGW_ERR_PROTOCOL', `malformed OPEN: ${why}`);
  };
  if (payload.length < FIXED_BYTES + 3) fail('too short');
  const protocol = protocolNames[payload.readUInt8(0)] ?? fail('unknown protocol');
  const initialWindow = payload.readUInt32BE(1);
  const port = payload.readUInt16BE(5);
  const clientPort = payload.readUInt16BE(7);
  const localPort = payload.readUInt16BE(9);
  let o = FIXED_BYTES;
  const strings: string[] = [];
  for (let i = 0; i < 3; i++) {
    const len = payload.readUInt8(o);
    o += 1;
    if (o + len > payload.length) fail('string overruns payload');
    strings.push(payload.toString('latin1', o, o + len));
    o += len;
  }
  if (o !== payload.length) fail('trailing bytes');
  const [clientAddress, localAddress, hostname] = strings as [string, string, string];
  if (clientAddress && isIP(clientAddress) === 0) fail('client address is not an IP');
  if (localAddress && isIP(localAddress) === 0) fail('local address is not an IP');
  return {
    protocol,
    initialWindow,
    port,
    hostname,
    client: { address: clientAddress, port: clientPort },
    local: { address: localAddress, port: localPort },
  };
}
