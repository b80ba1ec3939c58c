/**
 * Raw TCP: one listener per granted port inside the gateway's range, opened when the first agent
 * granted that port connects and closed when the last one leaves (open connections continue).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { describeError } from '../common/errors.ts';
import { Lifecycle } from '../common/lifecycle.ts';
import type { Logger } from '../common/log.ts';
import { closeServer, formatHostPort, listen, plainAddress } from '../common/net.ts';
import type { ClientLimiter } from './client-limiter.ts';
import { ClientSockets } from './client-sockets.ts';
import type { Connector } from './connector.ts';
import { forwardConnection } from './forward-connection.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface TcpListenersOptions {
  address: string;
  /** Bind with SO_REUSEPORT (common/net.ts listen). */
  reusePort?: boolean;
  connector: Connector;
  clients: ClientLimiter;
  logger: Logger;
  metrics: GatewayMetrics;
}

export class TcpListeners {
  private readonly opts: TcpListenersOptions;
  private readonly log: Logger;
  private readonly servers = new Map<number, Server>();
  private readonly sockets: ClientSockets;
  private readonly life = new Lifecycle();
  private syncing: Promise<void> = Promise.resolve();

  constructor(opts: TcpListenersOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ listener: 'tcp' });
    this.sockets = new ClientSockets(opts.clients, 'tcp');
  }

  get ports(): number[] {
    return [...this.servers.keys()].sort((a, b) => a - b);
  }

  /** Makes the open listeners match `wanted`; calls are serialized. */
  sync(wanted: ReadonlySet<number>): Promise<void> {
    this.syncing = this.syncing.then(() => this.apply(wanted));
    return this.syncing;
  }

  /** Stops accepting on every port (a sync in progress finishes first); open connections go on. */
  close(): Promise<void> {
    return this.life.close(async () => {
      await this.syncing;
      await Promise.all([...this.servers.values()].map((s) => closeServer(s)));
      this.servers.clear();
    });
  }

  destroy(): void {
    this.life.destroy(() => {
      this.sockets.destroyAll();
      for (const server of this.servers.values()) server.close();
      this.servers.clear();
    });
  }

  private async apply(wanted: ReadonlySet<number>): Promise<void> {
    for (const [port, server] of this.servers) {
      if (wanted.has(port)) continue;
      this.servers.delete(port);
      await closeServer(server);
      this.log.info('TCP listener closed', { port });
    }
    for (const port of wanted) {
      if (this.life.stopping) return;
      if (this.servers.has(port)) continue;
      const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.onConnection(socket, port));
      try {
        const info = await listen(server, port, this.opts.address, { reusePort: this.opts.reusePort });
        if (this.life.destroyed) {
          server.close();
          return;
        }
        this.servers.set(port, server);
        this.log.info('TCP listener ready', { address: formatHostPort(info.address, info.port) });
      } catch (err) {
        this.log.error('cannot listen on granted TCP port', { port, err: describeError(err) });
      }
    }
  }

  private onConnection(socket: Socket, port: number): void {
    if (!this.sockets.admit(socket)) return;
    socket.pause();
    const request = {
      protocol: 'tcp' as const,
      hostname: '',
      port,
      client: { address: plainAddress(socket.remoteAddress), port: socket.remotePort ?? 0 },
      local: { address: plainAddress(socket.localAddress), port: socket.localPort ?? 0 },
    };
    void this.opts.connector
      .awaitAgent('tcp', port)
      .then(() => {
        if (!socket.destroyed) void forwardConnection(socket, request, undefined, this.opts, () => socket.destroy());
      })
      .catch(() => socket.destroy());
  }
}
