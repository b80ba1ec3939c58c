/** Small socket helpers shared by listeners. */
import { createServer, type AddressInfo, type Server as NetServer } from 'node:net';

/** `::ffff:1.2.3.4` → `1.2.3.4`, so logs, headers and PROXY headers show plain IPv4. */
export function plainAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * Binds and listens. `reusePort` (SO_REUSEPORT): another process of the same user may bind the
 * same address and port, and the kernel spreads new connections over both (a gateway's handover).
 */
export function listen(
  server: NetServer,
  port: number,
  host: string,
  options: { reusePort?: boolean } = {},
): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ port, host, ...(options.reusePort ? { reusePort: true } : {}) }, () => {
      server.removeListener('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Stops accepting; resolves when the listener is closed (open connections are the caller's). */
export function closeServer(server: NetServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    const closeAll = (server as { closeIdleConnections?: () => void }).closeIdleConnections;
    closeAll?.call(server);
  });
}

export function formatHostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * A loopback port that is free right now: `preferred` if it can be bound, else one the kernel
 * picks. Racy by nature (someone may take it before the caller binds it); for demos and tests.
 */
export async function freeLoopbackPort(preferred = 0): Promise<number> {
  const probe = createServer();
  try {
    return (await listen(probe, preferred, '127.0.0.1')).port;
  } catch {
    return (await listen(probe, 0, '127.0.0.1')).port;
  } finally {
    probe.close();
  }
}
