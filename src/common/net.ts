/** Small socket helpers shared by listeners. */
import type { AddressInfo } from 'node:net';
import type { Server as NetServer } from 'node:net';

/** `::ffff:1.2.3.4` → `1.2.3.4`, so logs, headers and PROXY headers show plain IPv4. */
export function plainAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export function listen(server: NetServer, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ port, host }, () => {
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
