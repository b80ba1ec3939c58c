/**
 * What every public listener (HTTP, TLS, TCP) keeps of its clients' sockets: each is admitted
 * through the gateway's client limits, tracked until it closes, and never lets an error event
 * escape (a client's reset is that client's matter); destroy() cuts all of them.
 */
import type { Socket } from 'node:net';
import type { ClientLimiter } from './client-limiter.ts';

export type PublicListenerKind = 'http' | 'tls' | 'tcp';

export class ClientSockets {
  private readonly open = new Set<Socket>();
  private readonly clients: ClientLimiter;
  private readonly kind: PublicListenerKind;

  constructor(clients: ClientLimiter, kind: PublicListenerKind) {
    this.clients = clients;
    this.kind = kind;
  }

  get size(): number {
    return this.open.size;
  }

  /** Tracks `socket` until it closes; false (and the socket closed) when a client limit refuses it. */
  admit(socket: Socket): boolean {
    socket.on('error', () => {});
    if (!this.clients.admit(socket, this.kind)) return false;
    this.track(socket);
    return true;
  }

  /** Tracks a socket layered on an admitted one (a TLS socket terminated over it). */
  track(socket: Socket): void {
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
  }

  destroyAll(): void {
    for (const socket of this.open) socket.destroy();
  }
}
