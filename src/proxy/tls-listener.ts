/**
 * The public TLS listener: TLS passthrough routed by SNI. The gateway reads the ClientHello
 * (bounded in size and time), picks the route, replays the bytes to the agent and relays the
 * rest; it never holds the service's key. Unknown or missing SNI: a fatal alert and close.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Clock } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { closeServer, formatHostPort, listen, plainAddress } from '../common/net.ts';
import { normalizeHostname } from '../pki/grants.ts';
import { MAX_HELLO_BYTES, parseClientHello, tlsAlert } from './client-hello.ts';
import type { ClientLimiter } from './client-limiter.ts';
import type { Connector } from './connector.ts';
import { forwardConnection } from './forward-connection.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface TlsListenerOptions {
  address: string;
  port: number;
  /** Bind with SO_REUSEPORT (common/net.ts listen). */
  reusePort?: boolean;
  helloTimeoutMs: number;
  connector: Connector;
  clients: ClientLimiter;
  clock: Clock;
  logger: Logger;
  metrics: GatewayMetrics;
}

export class TlsListener {
  private readonly opts: TlsListenerOptions;
  private readonly log: Logger;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(opts: TlsListenerOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ listener: 'tls' });
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.onConnection(socket));
  }

  async start(): Promise<AddressInfo> {
    const info = await listen(this.server, this.opts.port, this.opts.address, { reusePort: this.opts.reusePort });
    this.log.info('TLS passthrough listener ready', { address: formatHostPort(info.address, info.port) });
    return info;
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }

  destroy(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }

  private onConnection(socket: Socket): void {
    if (!this.opts.clients.admit(socket, 'tls')) return;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = this.opts.clock.setTimeout(() => {
      this.log.debug('ClientHello timeout', { remote: plainAddress(socket.remoteAddress) });
      socket.destroy();
    }, this.opts.helloTimeoutMs);
    const reject = (why: string, alert: Parameters<typeof tlsAlert>[0]): void => {
      timer.cancel();
      socket.removeListener('data', onData);
      this.log.debug('TLS connection refused', { remote: plainAddress(socket.remoteAddress), why });
      socket.end(tlsAlert(alert), () => socket.destroy());
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      let result;
      const data = chunks.length === 1 ? chunk : Buffer.concat(chunks, size);
      try {
        result = parseClientHello(data.subarray(0, MAX_HELLO_BYTES));
      } catch (err) {
        reject(describeError(err), 'handshake_failure');
        return;
      }
      if (result.state === 'more') return;
      timer.cancel();
      socket.removeListener('data', onData);
      socket.pause();
      let hostname: string;
      try {
        hostname = normalizeHostname(result.sni ?? '');
      } catch {
        reject(`missing or invalid SNI ${JSON.stringify(result.sni ?? '')}`, 'unrecognized_name');
        return;
      }
      const request = {
        protocol: 'tls' as const, hostname, port: socket.localPort ?? 0,
        client: { address: plainAddress(socket.remoteAddress), port: socket.remotePort ?? 0 },
        local: { address: plainAddress(socket.localAddress), port: socket.localPort ?? 0 },
      };
      void this.opts.connector.awaitAgent('tls', hostname).then((status) => {
        if (socket.destroyed) return;
        if (status === 'unknown') reject(`no route for SNI ${hostname}`, 'unrecognized_name');
        else void forwardConnection(socket, request, data, this.opts, () => reject(`no agent for ${hostname}`, 'internal_error'));
      }).catch(() => socket.destroy());
    };
    socket.on('data', onData);
  }
}
