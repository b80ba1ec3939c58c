/**
 * The gateway process: tunnel endpoint, public listeners (HTTP, TLS, TCP) and the admin
 * listener, wired around one route table that only authenticated agents' grants fill.
 */
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { AdminServer } from '../common/admin-server.ts';
import { systemClock, type Clock, type Timer } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import { Lifecycle } from '../common/lifecycle.ts';
import { FileWatcher } from '../common/file-watcher.ts';
import type { Logger } from '../common/log.ts';
import type { AgentLink } from './agent-link.ts';
import { AcmeChallenges } from './acme-challenges.ts';
import { CertificateStore } from './certificate-store.ts';
import type { GatewayConfig } from './config.ts';
import { Connector } from './connector.ts';
import { HttpListener } from './http/listener.ts';
import { createGatewayMetrics } from './metrics.ts';
import { RouteTable } from './route-table.ts';
import { ClientLimiter } from './client-limiter.ts';
import { TcpListeners } from './tcp-listeners.ts';
import { TlsListener } from './tls-listener.ts';
import { TunnelServer } from './tunnel-server.ts';
import { loadAuthorizedAgents } from '../pki/authorized-agents.ts';

/**
 * sharePorts: how long the old process keeps its agents after its listeners closed, so that
 * connections accepted just before get their requests through (they arrive within a round trip).
 */
const HANDOVER_GRACE_MS = 1000;

export interface GatewayDeps {
  logger: Logger;
  clock?: Clock;
  registry?: Registry;
  /** How often to re-check the credential files (fs.watch usually notices sooner). */
  credentialPollMs?: number;
}

export interface GatewayAddresses {
  tunnel: AddressInfo;
  http?: AddressInfo;
  tls?: AddressInfo;
  admin?: AddressInfo;
}

export class Gateway {
  readonly registry: Registry;
  readonly routes = new RouteTable<AgentLink>();
  private readonly config: GatewayConfig;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly tunnel: TunnelServer;
  private readonly http?: HttpListener;
  private readonly tls?: TlsListener;
  private readonly tcp?: TcpListeners;
  private readonly admin?: AdminServer;
  private readonly watcher: FileWatcher;
  private agentsWatcher: FileWatcher | undefined;
  /** Certificates for TLS terminated here, and what watches their folder. */
  private readonly certificates?: CertificateStore;
  private certificatesWatcher: FileWatcher | undefined;
  private tlsPort: number | undefined;
  private readonly pollMs: number;
  private started = false;
  private readonly life = new Lifecycle();

  constructor(config: GatewayConfig, deps: GatewayDeps) {
    this.config = config;
    this.log = deps.logger.child({ gateway: config.name });
    this.clock = deps.clock ?? systemClock;
    this.registry = deps.registry ?? new Registry();
    const metrics = createGatewayMetrics(this.registry);
    const limits = config.limits;
    const connector = new Connector({
      routes: this.routes,
      clock: this.clock,
      openTimeoutMs: limits.openTimeoutMs,
      agentWaitMs: limits.agentWaitMs,
      warmupMs: limits.warmupMs,
    });
    const reusePort = config.sharePorts;
    const range = config.listeners.tcp?.portRange;
    const clients = new ClientLimiter(
      { maxConnectionsPerClient: limits.maxConnectionsPerClient, maxConnections: limits.maxConnections },
      metrics,
      this.log,
      this.clock,
    );
    const common = { connector, clients, clock: this.clock, logger: this.log, metrics, reusePort };
    // ACME HTTP-01 answers from the controller, served on plain HTTP (RFC 8555 §8.3: port 80).
    const acmeChallenges = config.listeners.http ? new AcmeChallenges(this.clock) : undefined;
    this.tunnel = new TunnelServer({
      ...config.tunnel,
      reusePort,
      maxAgents: limits.maxAgents,
      maxStreamsPerAgent: limits.maxStreamsPerAgent,
      maxSessionsPerIdentity: limits.maxSessionsPerIdentity,
      receiveBudgetBytes: limits.receiveBudgetBytes,
      receiveBudgetPerIdentityBytes: limits.receiveBudgetPerIdentityBytes,
      tcpPortAllowed: (p) => range !== undefined && p >= range.from && p <= range.to,
      routeCount: () => this.routes.routeCount,
      ...(acmeChallenges ? { acmeChallenges } : {}),
      clock: this.clock,
      logger: this.log,
      metrics,
    });
    const httpsConfig = config.listeners.https;
    if (httpsConfig?.certificatesDir) this.certificates = new CertificateStore(httpsConfig.certificatesDir);
    // The HTTP listener also serves the HTTPS connections the TLS listener terminates.
    if (config.listeners.http || this.certificates) {
      this.http = new HttpListener({
        ...config.listeners.http,
        httpsPort: () => this.tlsPort,
        ...(acmeChallenges ? { acmeChallenges } : {}),
        limits,
        ...common,
      });
    }
    if (httpsConfig) {
      this.tls = new TlsListener({
        address: httpsConfig.address,
        port: httpsConfig.port,
        helloTimeoutMs: limits.clientHelloTimeoutMs,
        ...(this.certificates ? { certificates: this.certificates } : {}),
        ...(this.http ? { https: this.http } : {}),
        ...common,
      });
    }
    if (config.listeners.tcp) this.tcp = new TcpListeners({ address: config.listeners.tcp.address, ...common });
    if (config.admin) {
      this.admin = new AdminServer({
        ...config.admin,
        reusePort,
        registry: this.registry,
        notReadyReason: () => (this.life.stopping ? 'shutting down' : this.started ? undefined : 'starting'),
      });
    }
    this.tunnel.on('agent', (link) => {
      this.routes.add(link, link.grants);
      connector.routesChanged();
      void this.tcp?.sync(this.routes.tcpPorts());
    });
    this.tunnel.on('agentDraining', (link) => this.http?.dropAgent(link));
    this.tunnel.on('agentGone', (link) => {
      this.routes.remove(link, this.clock.now(), !link.withdrawn);
      this.http?.dropAgent(link);
      void this.tcp?.sync(this.routes.tcpPorts());
    });
    this.pollMs = deps.credentialPollMs ?? 10_000;
    this.watcher = new FileWatcher({
      files: [config.tunnel.caFile, config.tunnel.certFile, config.tunnel.keyFile],
      pollMs: this.pollMs,
      clock: this.clock,
      onChange: () => {
        this.tunnel
          .reloadCredentials()
          .catch((err) =>
            this.log.error('cannot reload tunnel credentials; keeping the old ones', { err: describeError(err) }),
          );
      },
    });
    if (!deps.registry) collectDefaultMetrics({ register: this.registry, prefix: 'webgw_gateway_' });
  }

  async start(): Promise<GatewayAddresses> {
    const authorizedFile = this.config.tunnel.authorizedAgentsFile;
    if (authorizedFile) {
      const reload = (): Promise<void> =>
        loadAuthorizedAgents(authorizedFile).then((list) => {
          this.log.info('admitted agents loaded', { count: list.size });
          this.tunnel.setAuthorizedAgents(list);
        });
      // Watch before the first load, so a change in between is not missed.
      this.agentsWatcher = new FileWatcher({
        files: [authorizedFile],
        pollMs: this.pollMs,
        clock: this.clock,
        onChange: () => {
          reload().catch((err) =>
            this.log.error('cannot reload the admitted agents; keeping the old list', { err: describeError(err) }),
          );
        },
      });
      await this.agentsWatcher.start();
      await reload();
    }
    await this.watchCertificates();
    if (this.config.sharePorts) warnUnlessRequestsMigrate(this.log);
    const tunnel = await this.tunnel.start();
    const http = this.config.listeners.http ? await this.http?.start() : undefined;
    const tls = await this.tls?.start();
    this.tlsPort = tls?.port;
    const admin = await this.admin?.start();
    await this.watcher.start();
    this.started = true;
    if (this.config.readyFile) await writeFile(this.config.readyFile, `${process.pid}\n`);
    return { tunnel, ...(http && { http }), ...(tls && { tls }), ...(admin && { admin }) };
  }

  /** Loads the certificates for terminated TLS, and again whenever their folder changes. */
  private async watchCertificates(): Promise<void> {
    const store = this.certificates;
    if (!store) return;
    const dir = this.config.listeners.https?.certificatesDir as string;
    const reload = async (): Promise<void> => {
      const { loaded, skipped } = await store.reload(this.clock.date());
      this.log.info('certificates loaded', { dir, loaded, names: store.size });
      for (const s of skipped.slice(0, 20)) this.log.warn('certificate skipped', { dir, name: s.name, why: s.why });
    };
    this.certificatesWatcher = new FileWatcher({
      files: () => store.files(),
      dirs: [dir],
      pollMs: this.pollMs,
      clock: this.clock,
      onChange: () => {
        reload().catch((err) =>
          this.log.error('cannot reload the certificates; keeping the old ones', { dir, err: describeError(err) }),
        );
      },
    });
    await this.certificatesWatcher.start();
    await reload();
  }

  get agentCount(): number {
    return this.tunnel.agents.size;
  }

  get tcpPorts(): number[] {
    return this.tcp?.ports ?? [];
  }

  /**
   * Drain: stop accepting clients, then GOAWAY to agents and stop accepting agents, and let open
   * connections finish (bounded). With sharePorts a new process shares every port: the admin
   * listener closes first (the kubelet's probes reach the new process), then the public ones (new
   * clients reach the new process, which waits for the agents), then the agents are sent over.
   */
  close(timeoutMs = 10_000): Promise<void> {
    return this.life.close(async () => {
      // A ready file that cannot be removed must not cost the drain (the pod is going anyway).
      if (this.config.readyFile) {
        await rm(this.config.readyFile, { force: true }).catch((err: unknown) =>
          this.log.warn('cannot remove the ready file', { file: this.config.readyFile, err: describeError(err) }),
        );
      }
      this.watcher.close();
      this.agentsWatcher?.close();
      this.certificatesWatcher?.close();
      if (this.config.sharePorts) {
        await this.admin?.close();
        const clientsDone = Promise.all([this.http?.close(), this.tls?.close(), this.tcp?.close()]);
        // Connections accepted just before the listeners closed get their requests onto the
        // agents' sessions first; then the agents go over while the last clients finish here (a
        // request waiting for them in the new process must not wait for the slowest download).
        let grace: Timer | undefined;
        await Promise.race([
          clientsDone,
          new Promise<void>((resolve) => {
            grace = this.clock.setTimeout(resolve, HANDOVER_GRACE_MS);
          }),
        ]);
        grace?.cancel();
        await Promise.all([clientsDone, this.tunnel.close(timeoutMs)]);
      } else {
        await Promise.all([this.http?.close(), this.tls?.close(), this.tcp?.close()]);
        await this.tunnel.close(timeoutMs);
      }
      await this.admin?.close();
    });
  }

  /** Stop now: every client connection and agent session is cut. */
  destroy(): void {
    this.life.destroy(() => {
      this.watcher.close();
      this.agentsWatcher?.close();
      this.certificatesWatcher?.close();
      this.http?.destroy();
      this.tls?.destroy();
      this.tcp?.destroy();
      this.tunnel.destroy();
      void this.admin?.close();
    });
  }
}

/**
 * With shared ports, a listener that closes resets the connections still in its accept queue
 * unless the kernel moves them to the other listener of its port (Linux 5.14+, a per network
 * namespace setting the farmer makes on the node: a pod on the host network may not set it).
 */
function warnUnlessRequestsMigrate(log: Logger): void {
  let value = '';
  try {
    value = readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim();
  } catch {
    /* not Linux, or no such setting */
  }
  if (value !== '1')
    log.warn(
      'net.ipv4.tcp_migrate_req is not 1 on this host: a rollout may reset the few connections waiting to be accepted; set it on the node (docs: farmer nodes)',
      { value },
    );
}
