/**
 * TLS termination for connections the TLS listener already routed by SNI. node's tls.Server
 * (never listening) runs the handshake on the socket, with the certificate the store holds for
 * the name: what comes out is a TLSSocket that node:http2 can serve. (A TLSSocket built by hand
 * over the socket works for HTTP/1.1, but an HTTP/2 session on it never sees a frame; seen with
 * Node 24.)
 *
 * ALPN: `h2` then `http/1.1` for HTTPS (the server's order decides, so HTTP/2 wins when the client
 * offers both); nothing for a relayed stream, whose protocol only the backend knows. The handshake
 * is bounded by `handshakeTimeoutMs`, on the gateway's clock.
 */
import type { Socket } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { Clock, Timer } from '../common/clock.ts';
import { WebgwError, describeError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { plainAddress } from '../common/net.ts';
import { normalizeHostname } from '../pki/grants.ts';
import type { CertificateStore } from './certificate-store.ts';
import type { GatewayMetrics } from './metrics.ts';

export const HTTPS_ALPN = ['h2', 'http/1.1'];

export interface TlsTerminatorOptions {
  certificates: CertificateStore;
  handshakeTimeoutMs: number;
  clock: Clock;
  logger: Logger;
  metrics: GatewayMetrics;
}

interface Pending {
  timer: Timer;
  secured: (secure: TLSSocket) => void;
}

export class TlsTerminator {
  private readonly opts: TlsTerminatorOptions;
  private readonly https: Server;
  private readonly relay: Server;
  /** Handshakes under way, by the connection's addresses (the TLSSocket has the same ones). */
  private readonly pending = new Map<string, Pending>();

  constructor(opts: TlsTerminatorOptions) {
    this.opts = opts;
    this.https = this.server(HTTPS_ALPN);
    this.relay = this.server(undefined);
  }

  /**
   * Terminates TLS on `socket`, whose ClientHello (`hello`) was already read; `secured` runs once
   * the handshake is done. `http`: offer ALPN h2 and http/1.1.
   */
  terminate(socket: Socket, hello: Buffer, http: boolean, secured: (secure: TLSSocket) => void): void {
    const key = connectionKey(socket);
    const timer = this.opts.clock.setTimeout(() => {
      this.opts.metrics.tlsTerminations.inc({ result: 'timeout' });
      socket.destroy();
    }, this.opts.handshakeTimeoutMs);
    this.pending.set(key, { timer, secured });
    socket.once('close', () => {
      timer.cancel();
      if (this.pending.get(key)?.secured === secured) this.pending.delete(key);
    });
    socket.unshift(hello);
    (http ? this.https : this.relay).emit('connection', socket);
  }

  private server(alpn: string[] | undefined): Server {
    const server = createServer({
      ...(alpn ? { ALPNProtocols: alpn } : {}),
      // The gateway's clock bounds the handshake (terminate); this is only a backstop.
      handshakeTimeout: this.opts.handshakeTimeoutMs * 2,
      SNICallback: (servername, done) => {
        let context;
        try {
          context = this.opts.certificates.find(normalizeHostname(servername), this.opts.clock.date())?.context();
        } catch {
          context = undefined;
        }
        if (context) done(null, context);
        else done(new WebgwError('WEBGW_ERR_NO_CERTIFICATE', `no certificate for ${JSON.stringify(servername)}`));
      },
    });
    server.on('secureConnection', (secure: TLSSocket) => {
      const key = connectionKey(secure);
      const pending = this.pending.get(key);
      this.pending.delete(key);
      if (!pending) {
        secure.destroy();
        return;
      }
      pending.timer.cancel();
      secure.on('error', () => secure.destroy());
      this.opts.metrics.tlsTerminations.inc({ result: 'done' });
      pending.secured(secure);
    });
    server.on('tlsClientError', (err: Error, secure: TLSSocket) => {
      const key = connectionKey(secure);
      this.pending.get(key)?.timer.cancel();
      this.pending.delete(key);
      this.opts.metrics.tlsTerminations.inc({ result: 'failed' });
      this.opts.logger.debug('TLS handshake failed', {
        remote: plainAddress(secure.remoteAddress),
        err: describeError(err),
      });
      secure.destroy();
    });
    return server;
  }
}

function connectionKey(socket: Socket): string {
  return `${socket.remoteAddress} ${socket.remotePort} ${socket.localAddress} ${socket.localPort}`;
}
