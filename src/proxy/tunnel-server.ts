/**
 * The gateway's tunnel endpoint: WebSocket over mutual TLS. The client certificate is required
 * and verified in the handshake (OpenSSL: chain to this gateway's CA, dates, clientAuth); the
 * agent's routes then come only from the grants in that certificate.
 */
import { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Clock, Timer } from '../common/clock.ts';
import { WebgwError, describeError } from '../common/errors.ts';
import { Lifecycle } from '../common/lifecycle.ts';
import type { Logger } from '../common/log.ts';
import { LogThrottle } from '../common/log-throttle.ts';
import { closeServer, formatHostPort, listen, plainAddress } from '../common/net.ts';
import { SESSION_REPORT_PATH, type SessionReport } from '../common/session-report.ts';
import { ACME_CHALLENGE_PATH, MAX_CHALLENGE_BODY_BYTES, parseChallengeAnswer } from '../common/acme-challenge.ts';
import { ACME_RESPONDER_GRANT, SESSION_READER_GRANT, type ControllerGrant } from '../pki/grants.ts';
import { verifyAgentCertificate, verifyControllerCertificate } from '../pki/verify.ts';
import { ReceiveBudget } from '../tunnel/receive-budget.ts';
import { keepaliveOptions, type KeepaliveConfig } from '../tunnel/keepalive.ts';
import { TunnelSession } from '../tunnel/session.ts';
import { MAX_MESSAGE_BYTES, TUNNEL_PATH } from '../tunnel/transport.ts';
import { acceptUpgrade, checkUpgradeRequest, refuseUpgrade } from '../tunnel/websocket/handshake.ts';
import { webSocketTransport } from '../tunnel/websocket/transport.ts';
import { AgentLink } from './agent-link.ts';
import { normalizeSerial, type AuthorizedAgents } from '../pki/authorized-agents.ts';
import type { AcmeChallenges } from './acme-challenges.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface TunnelServerOptions {
  address: string;
  port: number;
  /** Bind with SO_REUSEPORT (common/net.ts listen). */
  reusePort?: boolean;
  caFile: string;
  certFile: string;
  keyFile: string;
  maxAgents: number;
  maxStreamsPerAgent: number;
  maxSessionsPerIdentity: number;
  receiveBudgetBytes: number;
  receiveBudgetPerIdentityBytes: number;
  keepalive: KeepaliveConfig;
  /** TCP ports the gateway may serve; grants outside are ignored. */
  tcpPortAllowed: (port: number) => boolean;
  /** How many routes this replica serves now (for the session report). */
  routeCount: () => number;
  /** Where the ACME answers the controller hands over are kept (the HTTP listener serves them). */
  acmeChallenges?: AcmeChallenges;
  clock: Clock;
  logger: Logger;
  metrics: GatewayMetrics;
}

export interface TunnelServerEvents {
  agent: [link: AgentLink];
  /** The agent said GOAWAY: it takes no new streams (its idle pooled streams can go). */
  agentDraining: [link: AgentLink];
  agentGone: [link: AgentLink];
}

/** Session reports served per second at most (the controller asks once per interval). */
const REPORTS_PER_SECOND = 5;
/** ACME answers taken per second at most (one PUT and one DELETE per order and replica). */
const ACME_WRITES_PER_SECOND = 100;

interface Credentials {
  ca: string;
  cert: string;
  key: string;
  caCert: X509Certificate;
}

export class TunnelServer extends EventEmitter<TunnelServerEvents> {
  private readonly life = new Lifecycle();
  private readonly opts: TunnelServerOptions;
  private readonly log: Logger;
  /** Refusals are caused from outside: their lines are throttled per reason. */
  private readonly refusals: LogThrottle;
  private server: Server | undefined;
  private credentials: Credentials | undefined;
  private readonly links = new Set<AgentLink>();
  private readonly expiryTimers = new Map<AgentLink, Timer>();
  private nextId = 1;
  /** Every bound a tenant shares among its sessions, per agent identity (its ExposedService). */
  private readonly tenants = new Map<string, { sessions: number; budget: ReceiveBudget }>();
  private readonly budget: ReceiveBudget;
  private authorized: AuthorizedAgents | undefined;
  private readonly windows = new Map<ControllerGrant, { second: number; count: number }>();

  constructor(opts: TunnelServerOptions) {
    super();
    this.opts = opts;
    this.log = opts.logger.child({ listener: 'tunnel' });
    this.refusals = new LogThrottle(this.log, opts.clock);
    this.budget = new ReceiveBudget(opts.receiveBudgetBytes);
  }

  get agents(): ReadonlySet<AgentLink> {
    return this.links;
  }

  async start(): Promise<AddressInfo> {
    this.credentials = await this.readCredentials();
    const { ca, cert, key } = this.credentials;
    // OpenSSL verifies the client certificate during the handshake (chain to this gateway's CA,
    // dates, clientAuth purpose). We read its verdict ourselves, before any HTTP byte is parsed,
    // so every refusal gets a log line with the precise reason; OpenSSL's own rejection would
    // only show up as "socket hang up" on the server side with TLS 1.3.
    this.server = createServer({ ca, cert, key, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' });
    this.server.prependListener('secureConnection', (socket: TLSSocket) => {
      if (socket.authorized) return;
      const reason = refusalReason(socket);
      this.opts.metrics.handshakeFailures.inc({ reason });
      this.refusals.warn(`handshake ${reason}`, 'agent refused at TLS handshake', {
        remote: plainAddress(socket.remoteAddress),
        reason,
        err: String(socket.authorizationError ?? ''),
      });
      socket.destroy();
    });
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '').split('?')[0] ?? '';
      if (path === SESSION_REPORT_PATH) {
        this.serveSessionReport(req, res);
        return;
      }
      if (path.startsWith(ACME_CHALLENGE_PATH)) {
        this.serveAcmeChallenge(req, res, path.slice(ACME_CHALLENGE_PATH.length));
        return;
      }
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end(`webgw tunnel endpoint: connect a WebSocket to ${TUNNEL_PATH}\n`);
    });
    this.server.on('tlsClientError', (err: Error & { code?: string }, socket) => {
      this.opts.metrics.handshakeFailures.inc({ reason: 'tls-error' });
      // A bare TCP connect-and-close (port probes, load balancer checks) is not worth a warning.
      const fields = { remote: plainAddress(socket.remoteAddress), err: describeError(err) };
      if (err.code === 'ECONNRESET') this.log.debug('TLS handshake failed on the tunnel port', fields);
      else this.refusals.warn('tls-error', 'TLS handshake failed on the tunnel port', fields);
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: TLSSocket, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    const info = await listen(this.server, this.opts.port, this.opts.address, { reusePort: this.opts.reusePort });
    this.log.info('tunnel endpoint listening', { address: formatHostPort(info.address, info.port), path: TUNNEL_PATH });
    return info;
  }

  /** Re-reads CA, certificate and key (renewed by the controller); new handshakes use them. */
  async reloadCredentials(): Promise<void> {
    const next = await this.readCredentials();
    this.server?.setSecureContext({ ca: next.ca, cert: next.cert, key: next.key });
    this.credentials = next;
    this.log.info('tunnel credentials reloaded', { notAfter: new X509Certificate(next.cert).validTo });
  }

  /**
   * Admits only these agent certificates from now on, and closes the sessions of those no longer
   * in the list (their grants were withdrawn). `undefined` admits every certificate of the CA.
   */
  setAuthorizedAgents(authorized: AuthorizedAgents | undefined): void {
    this.authorized = authorized;
    if (!authorized) return;
    for (const link of this.links) {
      if (authorized.has(normalizeSerial(link.serial))) continue;
      this.log.warn('agent credential withdrawn; closing its session', { agent: link.id, serial: link.serial });
      this.opts.metrics.handshakeFailures.inc({ reason: 'withdrawn' });
      link.withdrawn = true;
      link.session.destroy(new WebgwError('WEBGW_ERR_CERT_INVALID', 'agent credential withdrawn'));
    }
  }

  /** GOAWAY to every agent, stop accepting, wait for the sessions to drain. */
  close(timeoutMs = 10_000): Promise<void> {
    return this.life.close(async () => {
      const closing = [...this.links].map((l) => l.session.close(timeoutMs));
      await Promise.all([...closing, this.server ? closeServer(this.server) : Promise.resolve()]);
    });
  }

  destroy(): void {
    this.life.destroy(() => {
      const stopped = new WebgwError('WEBGW_ERR_SESSION_CLOSED', 'gateway stopped');
      for (const link of this.links) link.session.destroy(stopped);
      this.server?.closeAllConnections();
      this.server?.close();
    });
  }

  /**
   * A request only the controller may make: the client certificate (already chained to this
   * gateway's CA in the handshake) must carry exactly `grant` (pki/verify.ts), never an agent's
   * grants; each grant has its own bound per second. False (answered) when refused.
   */
  private admitController(
    req: IncomingMessage,
    res: ServerResponse,
    grant: ControllerGrant,
    perSecond: number,
  ): boolean {
    const remote = plainAddress(req.socket.remoteAddress);
    const peer = (req.socket as TLSSocket).getPeerX509Certificate();
    try {
      if (!peer) throw new WebgwError('WEBGW_ERR_CERT_INVALID', 'no client certificate');
      verifyControllerCertificate(peer, (this.credentials as Credentials).caCert, this.opts.clock.date(), grant);
    } catch (err) {
      this.refusals.warn(grant, `${grant} refused: not the controller's certificate for it`, {
        remote,
        err: describeError(err),
      });
      plainAnswer(res, 403, `this certificate does not grant ${grant}\n`);
      return false;
    }
    const second = Math.floor(this.opts.clock.now() / 1000);
    const window = this.windows.get(grant);
    if (!window || window.second !== second) this.windows.set(grant, { second, count: 1 });
    else if (++window.count > perSecond) {
      plainAnswer(res, 429, `more than ${perSecond} ${grant} requests this second\n`);
      return false;
    }
    return true;
  }

  /** The session table, for the controller only; it asks once per interval. */
  private serveSessionReport(req: IncomingMessage, res: ServerResponse): void {
    if (!this.admitController(req, res, SESSION_READER_GRANT, REPORTS_PER_SECOND)) return;
    if (req.method !== 'GET') {
      plainAnswer(res, 405, 'GET only\n');
      return;
    }
    const report: SessionReport = {
      routes: this.opts.routeCount(),
      sessions: [...this.links].map((l) => ({
        identity: l.grants.identity,
        since: l.connectedAt.toISOString(),
        ...(l.session.rttMs === undefined ? {} : { rttMs: Math.round(l.session.rttMs * 100) / 100 }),
        draining: l.draining,
      })),
    };
    plainAnswer(res, 200, JSON.stringify(report), 'application/json');
  }

  /** PUT (the answer, JSON, bounded) or DELETE an ACME HTTP-01 answer, from the controller only. */
  private serveAcmeChallenge(req: IncomingMessage, res: ServerResponse, token: string): void {
    if (!this.admitController(req, res, ACME_RESPONDER_GRANT, ACME_WRITES_PER_SECOND)) return;
    const store = this.opts.acmeChallenges;
    if (!store) {
      plainAnswer(res, 404, 'this gateway has no HTTP listener to answer ACME challenges on\n');
      return;
    }
    if (req.method === 'DELETE') {
      store.delete(token);
      plainAnswer(res, 204, '');
      return;
    }
    if (req.method !== 'PUT') {
      plainAnswer(res, 405, 'PUT or DELETE only\n');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_CHALLENGE_BODY_BYTES) {
        plainAnswer(res, 413, `an answer is at most ${MAX_CHALLENGE_BODY_BYTES} bytes\n`);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      try {
        store.put(token, parseChallengeAnswer(token, Buffer.concat(chunks).toString('utf8')));
        plainAnswer(res, 204, '');
      } catch (err) {
        plainAnswer(res, 400, `${describeError(err)}\n`);
      }
    });
    req.on('error', () => {});
  }

  private async readCredentials(): Promise<Credentials> {
    const { caFile, certFile, keyFile } = this.opts;
    try {
      const [ca, cert, key] = await Promise.all([
        readFile(caFile, 'utf8'),
        readFile(certFile, 'utf8'),
        readFile(keyFile, 'utf8'),
      ]);
      return { ca, cert, key, caCert: new X509Certificate(ca) };
    } catch (err) {
      throw new WebgwError('WEBGW_ERR_CREDENTIALS', `cannot load tunnel credentials: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /**
   * An agent asks for the tunnel. Everything is checked before the 101 answer, so a refused agent
   * gets an HTTP status (403, 503) and never a session.
   */
  private onUpgrade(req: IncomingMessage, socket: TLSSocket, head: Buffer): void {
    socket.on('error', () => {}); // failures end in 'close'; the session logs what matters
    const remote = formatHostPort(plainAddress(socket.remoteAddress), socket.remotePort ?? 0);
    const path = (req.url ?? '').split('?')[0];
    if (path !== TUNNEL_PATH) {
      refuseUpgrade(socket, 404, `webgw tunnel endpoint: connect a WebSocket to ${TUNNEL_PATH}`);
      return;
    }
    if (this.life.stopping) {
      refuseUpgrade(socket, 503, 'this gateway is shutting down');
      return;
    }
    const checked = checkUpgradeRequest(req);
    if ('status' in checked) {
      this.refusals.warn(`websocket ${checked.reason}`, 'bad WebSocket handshake on the tunnel port', {
        remote,
        reason: checked.reason,
      });
      refuseUpgrade(socket, checked.status, checked.reason);
      return;
    }
    const credentials = this.credentials as Credentials;
    let verified;
    try {
      const peer = socket.getPeerX509Certificate();
      if (!peer) throw new WebgwError('WEBGW_ERR_CERT_INVALID', 'no client certificate');
      verified = verifyAgentCertificate(peer, credentials.caCert, this.opts.clock.date());
    } catch (err) {
      this.opts.metrics.handshakeFailures.inc({ reason: 'grants' });
      this.refusals.warn('grants', 'agent refused: certificate not acceptable', { remote, err: describeError(err) });
      refuseUpgrade(socket, 403, 'certificate not acceptable');
      return;
    }
    if (this.authorized && !this.authorized.has(normalizeSerial(verified.serial))) {
      this.opts.metrics.handshakeFailures.inc({ reason: 'withdrawn' });
      this.refusals.warn('withdrawn', 'agent refused: credential not admitted (withdrawn or not yet listed)', {
        remote,
        identity: verified.grants.identity,
        serial: verified.serial,
      });
      refuseUpgrade(socket, 403, 'credential not admitted');
      return;
    }
    if (this.links.size >= this.opts.maxAgents) {
      this.refusals.warn('max-agents', 'agent refused: too many agents', { remote, limit: this.opts.maxAgents });
      refuseUpgrade(socket, 503, 'too many agents');
      return;
    }
    const grants = verified.grants;
    const tenant = this.tenants.get(grants.identity) ?? {
      sessions: 0,
      budget: new ReceiveBudget(this.opts.receiveBudgetPerIdentityBytes, this.budget),
    };
    if (tenant.sessions >= this.opts.maxSessionsPerIdentity) {
      this.opts.metrics.handshakeFailures.inc({ reason: 'sessions-per-identity' });
      this.refusals.warn(`sessions ${grants.identity}`, 'agent refused: its identity holds the most sessions allowed', {
        remote,
        identity: grants.identity,
        limit: this.opts.maxSessionsPerIdentity,
      });
      refuseUpgrade(socket, 503, 'too many sessions for this identity');
      return;
    }
    tenant.sessions += 1;
    this.tenants.set(grants.identity, tenant);
    const refusedPorts = grants.tcp.filter((p) => !this.opts.tcpPortAllowed(p));
    if (refusedPorts.length > 0) {
      this.log.warn("ignoring TCP grants outside this gateway's port range", { remote, ports: refusedPorts });
      grants.tcp = grants.tcp.filter((p) => this.opts.tcpPortAllowed(p));
    }
    const id = `${grants.identity || 'agent'}#${this.nextId++}`;
    const log = this.log.child({ agent: id, remote });
    acceptUpgrade(socket, checked.key);
    const transport = webSocketTransport(socket, head, { role: 'server', maxMessageBytes: MAX_MESSAGE_BYTES });
    const session = new TunnelSession(transport, {
      role: 'server',
      maxStreams: this.opts.maxStreamsPerAgent,
      receiveBudget: tenant.budget,
      ...keepaliveOptions(this.opts.keepalive),
      clock: this.opts.clock,
      logger: log,
    });
    const link = new AgentLink(id, session, grants, remote, verified.notAfter, verified.serial, this.opts.clock.date());
    this.links.add(link);
    this.opts.metrics.agentSessions.inc();
    session.on('rtt', (ms) => this.opts.metrics.tunnelRtt.observe(ms / 1000));
    // A first round trip now, not one ping interval later: the session report shows it at once.
    session.ping();
    session.on('close', (err) => {
      this.links.delete(link);
      if (--tenant.sessions === 0) this.tenants.delete(grants.identity);
      this.expiryTimers.get(link)?.cancel();
      this.expiryTimers.delete(link);
      this.opts.metrics.agentSessions.dec();
      log.info('agent disconnected', err ? { err: describeError(err) } : {});
      this.emit('agentGone', link);
    });
    session.on('goaway', () => {
      log.info('agent draining');
      this.emit('agentDraining', link);
    });
    const ttl = verified.notAfter.getTime() - this.opts.clock.date().getTime();
    this.expiryTimers.set(
      link,
      this.opts.clock.setTimeout(() => {
        log.warn('agent certificate expired; closing its session');
        session.destroy(new WebgwError('WEBGW_ERR_CERT_EXPIRED', 'agent certificate expired'));
      }, ttl),
    );
    log.info('agent connected', {
      http: grants.http,
      tls: grants.tls,
      tcp: grants.tcp,
      notAfter: verified.notAfter.toISOString(),
    });
    this.emit('agent', link);
  }
}

function plainAnswer(res: ServerResponse, status: number, body: string, type = 'text/plain'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
}

/** Maps OpenSSL's verdict on a client certificate to a short, stable reason. */
function refusalReason(socket: TLSSocket): string {
  if (!socket.getPeerX509Certificate()) return 'no-certificate';
  const code = String(socket.authorizationError ?? '');
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return 'expired';
  if (code === 'INVALID_PURPOSE') return 'wrong-purpose';
  return 'untrusted';
}
