/**
 * The agent process: for every gateway, credentials (reloaded when their files change) and one
 * EndpointConnection per tunnel endpoint; every stream goes to its route's local backend.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { systemClock, type Clock } from '../common/clock.ts';
import { WebgwError, describeError } from '../common/errors.ts';
import { Lifecycle } from '../common/lifecycle.ts';
import { FileWatcher } from '../common/file-watcher.ts';
import type { Logger } from '../common/log.ts';
import type { AgentConfig, GatewayEndpointConfig } from './config.ts';
import { EndpointConnection, type TlsCredentials } from './endpoint-connection.ts';
import { serveStream } from './forward.ts';
import { createAgentMetrics, type AgentMetrics } from './metrics.ts';
import { compileRoutes } from './routes.ts';
import { TlsCertificates } from './tls-certificates.ts';

export interface AgentDeps {
  logger: Logger;
  clock?: Clock;
  /** With `metrics`: the registry they are on. Without: default process metrics are added. */
  registry?: Registry;
  /** Shared by the agents a ReloadingAgent runs one after another, so counters carry on. */
  metrics?: AgentMetrics;
  credentialPollMs?: number;
}

interface GatewayState {
  config: GatewayEndpointConfig;
  credentials: TlsCredentials;
  connections: EndpointConnection[];
  watcher: FileWatcher;
}

export class Agent {
  readonly registry: Registry;
  private readonly config: AgentConfig;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly metrics: AgentMetrics;
  private readonly gateways: GatewayState[] = [];
  private readonly pollMs: number;
  private certificates: TlsCertificates | undefined;
  private readonly life = new Lifecycle();

  constructor(config: AgentConfig, deps: AgentDeps) {
    this.config = config;
    this.log = deps.logger.child({ agent: config.name });
    this.clock = deps.clock ?? systemClock;
    this.registry = deps.registry ?? new Registry();
    this.metrics = deps.metrics ?? createAgentMetrics(this.registry);
    this.pollMs = deps.credentialPollMs ?? 10_000;
    if (!deps.registry) collectDefaultMetrics({ register: this.registry, prefix: 'webgw_agent_' });
  }

  /** Loads credentials and starts dialing (the admin listener belongs to whoever runs the agent). */
  async start(): Promise<void> {
    const routes = compileRoutes(this.config.routes, this.config.proxyProtocol);
    const certificates = (this.certificates = new TlsCertificates({
      routes: routes.flatMap((r) => (r.terminate ? [{ hostname: r.hostname, terminate: r.terminate }] : [])),
      pollMs: this.pollMs,
      clock: this.clock,
      logger: this.log,
      metrics: this.metrics,
    }));
    await certificates.start();
    const { connectTimeoutMs, handshakeTimeoutMs } = this.config.limits;
    const forward = {
      routes,
      connectTimeoutMs,
      handshakeTimeoutMs,
      certificates,
      logger: this.log,
      metrics: this.metrics,
    };
    for (const gw of this.config.gateways) {
      const state: GatewayState = {
        config: gw,
        credentials: this.loadCredentials(gw),
        connections: [],
        watcher: new FileWatcher({
          files: [gw.caFile, gw.certFile, gw.keyFile],
          pollMs: this.pollMs,
          clock: this.clock,
          onChange: () => this.reload(state),
        }),
      };
      state.connections = gw.endpoints.map(
        (url) =>
          new EndpointConnection({
            gateway: gw.name,
            url,
            ...(gw.serverName ? { serverName: gw.serverName } : {}),
            credentials: () => state.credentials,
            onStream: (stream) => serveStream(stream, gw.name, forward),
            backoff: this.config.reconnect,
            maxStreams: this.config.limits.maxStreams,
            keepalive: this.config.keepalive,
            clock: this.clock,
            logger: this.log,
            metrics: this.metrics,
          }),
      );
      this.gateways.push(state);
      await state.watcher.start();
      for (const c of state.connections) c.start();
    }
  }

  /** Sessions connected now, across all gateways. */
  get connectedSessions(): number {
    return this.gateways.reduce((n, g) => n + g.connections.filter((c) => c.connected).length, 0);
  }

  /** Drains every session (GOAWAY, open streams finish within `timeoutMs`). */
  close(timeoutMs = 10_000): Promise<void> {
    return this.life.close(async () => {
      for (const g of this.gateways) g.watcher.close();
      this.certificates?.close();
      await Promise.all(this.gateways.flatMap((g) => g.connections.map((c) => c.close(timeoutMs))));
    });
  }

  destroy(): void {
    this.life.destroy(() => {
      this.certificates?.close();
      for (const g of this.gateways) {
        g.watcher.close();
        for (const c of g.connections) c.destroy();
      }
    });
  }

  /** Undefined when the agent serves (a tunnel to at least one gateway), else why not. */
  notReadyReason(): string | undefined {
    if (this.life.stopping) return 'shutting down';
    if (this.gateways.length === 0) return 'no gateway configured';
    // Ready while the service is reachable through at least one gateway: one gateway down must
    // not take every tenant pod out of its Services (ExposedService status says which is missing).
    if (this.gateways.some((g) => g.connections.some((c) => c.connected))) return undefined;
    return `no tunnel to ${this.gateways.map((g) => g.config.name).join(', ')}`;
  }

  private reload(state: GatewayState): void {
    try {
      state.credentials = this.loadCredentials(state.config);
    } catch (err) {
      this.log.error('cannot reload credentials; keeping the old ones', {
        gateway: state.config.name,
        err: describeError(err),
      });
      return;
    }
    this.log.info('credentials changed; rotating tunnel sessions', { gateway: state.config.name });
    for (const c of state.connections) c.rotate();
  }

  private loadCredentials(gw: GatewayEndpointConfig): TlsCredentials {
    try {
      const creds = {
        ca: readFileSync(gw.caFile, 'utf8'),
        cert: readFileSync(gw.certFile, 'utf8'),
        key: readFileSync(gw.keyFile, 'utf8'),
      };
      const cert = new X509Certificate(creds.cert);
      const notAfter = new Date(cert.validTo);
      this.metrics.certificateExpiry.set({ gateway: gw.name }, notAfter.getTime() / 1000);
      if (notAfter.getTime() < this.clock.date().getTime()) {
        this.log.warn('agent certificate has expired; the gateway will refuse it', {
          gateway: gw.name,
          notAfter: notAfter.toISOString(),
        });
      }
      return creds;
    } catch (err) {
      throw new WebgwError(
        'WEBGW_ERR_CREDENTIALS',
        `gateway ${gw.name}: cannot load credentials: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
}
