/**
 * Holds one tunnel session to one gateway endpoint: dial, serve streams, and redial with
 * jittered exponential backoff whenever the session is lost. On GOAWAY (gateway shutdown) or new
 * credentials it dials a replacement first and lets the old session drain.
 */
import { checkServerIdentity, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import type { Clock, Timer } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import { Lifecycle } from '../common/lifecycle.ts';
import type { Logger } from '../common/log.ts';
import { keepaliveOptions, type KeepaliveConfig } from '../tunnel/keepalive.ts';
import { TunnelSession } from '../tunnel/session.ts';
import { MAX_MESSAGE_BYTES, TUNNEL_PATH } from '../tunnel/transport.ts';
import { HandshakeError, dialWebSocket, type Dial, type DialedWebSocket } from '../tunnel/websocket/handshake.ts';
import { webSocketTransport } from '../tunnel/websocket/transport.ts';
import type { TunnelStream } from '../tunnel/stream.ts';
import { Backoff } from '../common/backoff.ts';
import type { AgentMetrics } from './metrics.ts';

export interface TlsCredentials {
  ca: string;
  cert: string;
  key: string;
}

export interface EndpointConnectionOptions {
  gateway: string;
  url: string;
  serverName?: string;
  credentials: () => TlsCredentials;
  onStream: (stream: TunnelStream) => void;
  backoff: { initialMs: number; maxMs: number };
  maxStreams: number;
  keepalive: KeepaliveConfig;
  clock: Clock;
  logger: Logger;
  metrics: AgentMetrics;
}

/** A session that lived this long counts as healthy: the next loss starts backoff afresh. */
const HEALTHY_AFTER_MS = 10_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;

export class EndpointConnection {
  private readonly opts: EndpointConnectionOptions;
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private readonly sessions = new Set<TunnelSession>();
  private current: TunnelSession | undefined;
  private dialing: Dial | undefined;
  private retryTimer: Timer | undefined;
  private readonly life = new Lifecycle();

  constructor(opts: EndpointConnectionOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ gateway: opts.gateway, endpoint: opts.url });
    this.backoff = new Backoff(opts.backoff);
  }

  get connected(): boolean {
    return this.current !== undefined && !this.current.isClosed && !this.current.isDraining;
  }

  get session(): TunnelSession | undefined {
    return this.current;
  }

  start(): void {
    this.dial();
  }

  /** New credentials: dial with them, then drain the session that used the old ones. */
  rotate(): void {
    if (this.life.stopping) return;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    if (!this.dialing) this.dial();
  }

  close(timeoutMs = 10_000): Promise<void> {
    return this.life.close(async () => {
      this.retryTimer?.cancel();
      this.dialing?.abort();
      await Promise.all([...this.sessions].map((s) => s.close(timeoutMs)));
    });
  }

  destroy(): void {
    this.life.destroy(() => {
      this.retryTimer?.cancel();
      this.dialing?.abort();
      for (const s of this.sessions) s.destroy();
    });
  }

  private dial(): void {
    if (this.life.stopping) return;
    const { ca, cert, key } = this.opts.credentials();
    const serverName = this.opts.serverName;
    const tlsOptions: ConnectionOptions = {
      ca,
      cert,
      key,
      rejectUnauthorized: true,
      ...(serverName
        ? {
            servername: serverName,
            checkServerIdentity: (_host: string, peer: PeerCertificate) => checkServerIdentity(serverName, peer),
          }
        : {}),
    };
    const dial = dialWebSocket(tunnelUrl(this.opts.url), tlsOptions, HANDSHAKE_TIMEOUT_MS);
    this.dialing = dial;
    dial.result.then(
      (connection) => {
        if (this.dialing === dial) this.dialing = undefined;
        if (this.life.stopping) {
          connection.socket.destroy();
          return;
        }
        this.onOpen(connection);
      },
      (err: unknown) => {
        if (this.dialing === dial) this.dialing = undefined;
        if (this.life.stopping) return;
        if (err instanceof HandshakeError && err.status !== undefined) {
          this.log.warn('gateway refused the tunnel', { status: err.status, err: err.message });
        } else {
          this.log.warn('tunnel dial failed', { err: describeError(err) });
        }
        this.scheduleRetry();
      },
    );
  }

  private onOpen({ socket, head }: DialedWebSocket): void {
    const openedAt = this.opts.clock.now();
    const transport = webSocketTransport(socket, head, { role: 'client', maxMessageBytes: MAX_MESSAGE_BYTES });
    const session = new TunnelSession(transport, {
      role: 'client',
      maxStreams: this.opts.maxStreams,
      ...keepaliveOptions(this.opts.keepalive),
      clock: this.opts.clock,
      logger: this.log,
    });
    const previous = this.current;
    this.current = session;
    this.sessions.add(session);
    this.opts.metrics.sessions.inc({ gateway: this.opts.gateway });
    this.log.info('tunnel connected');
    session.on('stream', (stream) => this.opts.onStream(stream));
    session.on('rtt', (ms) => this.opts.metrics.tunnelRtt.observe({ gateway: this.opts.gateway }, ms / 1000));
    session.on('goaway', (code, reason) => {
      this.log.info('gateway is draining this session; dialing a replacement', { code, reason });
      if (this.current === session) this.current = undefined;
      this.rotate();
    });
    session.on('close', (err) => {
      this.sessions.delete(session);
      this.opts.metrics.sessions.dec({ gateway: this.opts.gateway });
      if (this.current === session) this.current = undefined;
      if (this.opts.clock.now() - openedAt >= HEALTHY_AFTER_MS) this.backoff.reset();
      this.log.info('tunnel closed', err ? { err: describeError(err) } : {});
      if (!this.current && !this.dialing) this.scheduleRetry();
    });
    // The replaced session finishes its streams, then closes.
    if (previous && previous !== session) void previous.close();
  }

  private scheduleRetry(): void {
    if (this.life.stopping || this.retryTimer || this.dialing || this.connected) return;
    const delay = this.backoff.next();
    this.opts.metrics.reconnects.inc({ gateway: this.opts.gateway });
    this.log.info('reconnecting', { inMs: delay, attempt: this.backoff.attempts });
    this.retryTimer = this.opts.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.dial();
    }, delay);
  }
}

/** `wss://host:port` means the standard tunnel path. */
export function tunnelUrl(endpoint: string): string {
  const url = new URL(endpoint);
  if (url.pathname === '/' || url.pathname === '') url.pathname = TUNNEL_PATH;
  return url.toString();
}
