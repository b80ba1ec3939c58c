/** Minimal HTTP helpers for tests: raw sockets when the point is the bytes on the wire. */
import { once } from 'node:events';
import {
  createServer,
  request,
  type Agent,
  type IncomingHttpHeaders,
  type RequestListener,
  type Server,
} from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

export interface SimpleResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export function get(
  port: number,
  host: string,
  path = '/',
  agent?: Agent,
  headers: Record<string, string> = {},
): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, headers: { host, ...headers }, agent: agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Sends raw bytes and collects everything until the server closes (or `timeoutMs`). */
export function rawExchange(
  port: number,
  data: Buffer | string,
  timeoutMs = 5000,
): Promise<{ text: string; closed: boolean; elapsedMs: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket: Socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: false, elapsedMs: Date.now() - started });
    }, timeoutMs);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: true, elapsedMs: Date.now() - started });
    });
    socket.write(data);
  });
}

/** A loopback HTTP backend; by default it answers `served <Host>`. */
export async function startHttpBackend(
  handler: RequestListener = (req, res) => res.end(`served ${req.headers.host}`),
  address = '127.0.0.1',
): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  server.listen(0, address);
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

/** Sends `text`, half-closes, and returns everything the peer sent back before closing. */
export async function tcpExchange(port: number, text: string): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  socket.end(text);
  const chunks: Buffer[] = [];
  for await (const c of socket) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}
