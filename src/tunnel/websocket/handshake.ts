/**
 * The WebSocket opening handshake (RFC 6455 §4) on both sides of the tunnel. After it the socket
 * carries frames only (transport.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { WebgwError } from '../../common/errors.ts';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function acceptKey(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64');
}

/**
 * Checks an upgrade request; returns its Sec-WebSocket-Key, or the HTTP status and reason to
 * refuse it with.
 */
export function checkUpgradeRequest(req: IncomingMessage): { key: string } | { status: number; reason: string } {
  if (req.method !== 'GET') return { status: 405, reason: 'a WebSocket handshake is a GET' };
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket')
    return { status: 400, reason: 'Upgrade: websocket required' };
  const connection = (req.headers.connection ?? '')
    .toLowerCase()
    .split(',')
    .map((t) => t.trim());
  if (!connection.includes('upgrade')) return { status: 400, reason: 'Connection: Upgrade required' };
  if (req.headers['sec-websocket-version'] !== '13')
    return { status: 426, reason: 'Sec-WebSocket-Version 13 required' };
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || Buffer.from(key, 'base64').length !== 16)
    return { status: 400, reason: 'invalid Sec-WebSocket-Key' };
  return { key };
}

/** Completes the server side: 101 Switching Protocols. */
export function acceptUpgrade(socket: Socket, key: string): void {
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
  );
}

/** Refuses an upgrade with a plain HTTP answer and closes the connection. */
export function refuseUpgrade(socket: Socket, status: number, reason: string): void {
  const body = `${reason}\n`;
  const statusText: Record<number, string> = {
    400: 'Bad Request',
    403: 'Forbidden',
    404: 'Not Found',
    405: 'Method Not Allowed',
    426: 'Upgrade Required',
    503: 'Service Unavailable',
  };
  socket.end(
    `HTTP/1.1 ${status} ${statusText[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${status === 426 ? 'Sec-WebSocket-Version: 13\r\n' : ''}\r\n${body}`,
  );
}

export interface DialedWebSocket {
  socket: Socket;
  /** Bytes the server sent right after its 101 answer: the first frames. */
  head: Buffer;
}

/** Why a dial failed; `status` is set when the server answered with something else than 101. */
export class HandshakeError extends WebgwError {
  constructor(message: string, status?: number, cause?: unknown) {
    super('WEBGW_ERR_HANDSHAKE', message, {
      ...(cause === undefined ? {} : { cause }),
      ...(status === undefined ? {} : { status }),
    });
  }
}

export interface Dial {
  result: Promise<DialedWebSocket>;
  /** Gives up: the result rejects. */
  abort(): void;
}

/** Opens a WebSocket to `url` (wss: with `tls` options); fails after `timeoutMs`. */
export function dialWebSocket(url: string, tls: ConnectionOptions, timeoutMs: number): Dial {
  const target = new URL(url);
  const secure = target.protocol === 'wss:';
  if (!secure && target.protocol !== 'ws:') throw new HandshakeError(`not a WebSocket URL: ${url}`);
  const key = randomBytes(16).toString('base64');
  const req = (secure ? httpsRequest : httpRequest)({
    ...(secure ? tls : {}),
    host: target.hostname.replace(/^\[|\]$/g, ''),
    port: target.port || (secure ? 443 : 80),
    path: `${target.pathname}${target.search}`,
    method: 'GET',
    agent: false,
    headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': key },
  });
  const result = new Promise<DialedWebSocket>((resolve, reject) => {
    const timer = setTimeout(
      () => req.destroy(new HandshakeError(`WebSocket handshake timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    const fail = (err: Error): void => {
      clearTimeout(timer);
      reject(
        err instanceof HandshakeError
          ? err
          : new HandshakeError(`WebSocket dial failed: ${err.message}`, undefined, err),
      );
    };
    req.on('error', fail);
    req.on('response', (res) => {
      res.resume();
      req.destroy();
      fail(
        new HandshakeError(`gateway answered ${res.statusCode ?? 0} instead of switching to WebSocket`, res.statusCode),
      );
    });
    req.on('upgrade', (res, socket: Socket, head: Buffer) => {
      clearTimeout(timer);
      if (
        (res.headers.upgrade ?? '').toLowerCase() !== 'websocket' ||
        res.headers['sec-websocket-accept'] !== acceptKey(key)
      ) {
        socket.destroy();
        reject(new HandshakeError('invalid WebSocket handshake answer', res.statusCode));
        return;
      }
      resolve({ socket, head });
    });
    req.end();
  });
  return { result, abort: () => req.destroy(new HandshakeError('dial aborted')) };
}
