/**
 * The public TLS listener, routed by SNI. The gateway reads the ClientHello (bounded in size and
 * time) and picks the route:
 * - tls (passthrough): it replays the bytes to the agent and relays the rest; it never holds the
 *   service's key;
 * - https: it terminates TLS with a certificate of its own (certificate-store.ts) and hands the
 *   connection to the HTTP listener, which serves it as HTTPS;
 * - tls-terminated: it terminates TLS and relays the plaintext to the agent.
 * Unknown or missing SNI, or a terminated route without a certificate: a fatal alert and close.
 * Terminated connections go through tls-terminator.ts (ALPN h2 and http/1.1 for https), whose
 * handshake is bounded by the same timeout as the ClientHello.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Clock } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import { Lifecycle } from '../common/lifecycle.ts';
import type { Logger } from '../common/log.ts';
import { closeServer, formatHostPort, listen, plainAddress } from '../common/net.ts';
import { normalizeHostname } from '../pki/grants.ts';
import { MAX_HELLO_BYTES, parseClientHello, tlsAlert } from '../common/client-hello.ts';
import type { CertificateStore, ServedCertificate } from './certificate-store.ts';
import type { ClientLimiter } from './client-limiter.ts';
import { ClientSockets } from './client-sockets.ts';
import type { Connector } from './connector.ts';
import { forwardConnection } from './forward-connection.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { RouteKind } from './route-table.ts';
import { TlsTerminator } from './tls-terminator.ts';

/** Where a connection terminated here goes when its route is https. */
export interface HttpsServer {
  serveHttps(socket: TLSSocket, port: number, certificate: ServedCertificate): void;
}

/** Passthrough first: a tenant that holds its own key for a name keeps it end to end. */
const TLS_ROUTES = ['tls', 'https', 'tls-terminated'] as const satisfies readonly [RouteKind, ...RouteKind[]];

export interface TlsListenerOptions {
  address: string;
  port: number;
  /** Bind with SO_REUSEPORT (common/net.ts listen). */
  reusePort?: boolean;
  helloTimeoutMs: number;
  /** Certificates for terminated routes; without them, https and tls-terminated are refused. */
  certificates?: CertificateStore;
  https?: HttpsServer;
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
  private readonly sockets: ClientSockets;
  private readonly life = new Lifecycle();
  private readonly terminator: TlsTerminator | undefined;

  constructor(opts: TlsListenerOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ listener: 'tls' });
    const { certificates, clock, metrics } = opts;
    this.terminator =
      certificates &&
      new TlsTerminator({ certificates, clock, metrics, logger: this.log, handshakeTimeoutMs: opts.helloTimeoutMs });
    this.sockets = new ClientSockets(opts.clients, 'tls');
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.onConnection(socket));
  }

  async start(): Promise<AddressInfo> {
    const info = await listen(this.server, this.opts.port, this.opts.address, { reusePort: this.opts.reusePort });
    this.log.info('TLS listener ready', { address: formatHostPort(info.address, info.port) });
    return info;
  }

  /** Stops accepting; open connections go on until they end. */
  close(): Promise<void> {
    return this.life.close(() => closeServer(this.server));
  }

  destroy(): void {
    this.life.destroy(() => {
      this.sockets.destroyAll();
      this.server.close();
    });
  }

  private onConnection(socket: Socket): void {
    if (!this.sockets.admit(socket)) return;
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
        protocol: 'tls' as const,
        hostname,
        port: socket.localPort ?? 0,
        client: { address: plainAddress(socket.remoteAddress), port: socket.remotePort ?? 0 },
        local: { address: plainAddress(socket.localAddress), port: socket.localPort ?? 0 },
      };
      void this.opts.connector
        .awaitRoute(TLS_ROUTES, hostname)
        .then(({ kind, status }) => {
          if (socket.destroyed) return;
          if (status === 'unknown') {
            reject(`no route for SNI ${hostname}`, 'unrecognized_name');
            return;
          }
          if (kind === 'tls') {
            void forwardConnection(socket, request, data, this.opts, () =>
              reject(`no agent for ${hostname}`, 'internal_error'),
            );
            return;
          }
          const certificate = this.opts.certificates?.find(hostname, this.opts.clock.date());
          if (!certificate || (kind === 'https' && !this.opts.https)) {
            this.opts.metrics.tlsTerminations.inc({ result: 'no-certificate' });
            reject(`no certificate for ${hostname}`, 'unrecognized_name');
            return;
          }
          this.terminator?.terminate(socket, data, kind === 'https', (secure) => {
            this.sockets.track(secure);
            if (kind === 'https') this.opts.https?.serveHttps(secure, request.port, certificate);
            else
              void forwardConnection(secure, request, undefined, this.opts, () => secure.destroy(), 'tls-terminated');
          });
        })
        .catch((err: unknown) => {
          this.log.error('TLS connection failed unexpectedly; closing it', { err: describeError(err) });
          socket.destroy();
        });
    };
    socket.on('data', onData);
  }
}
