/**
 * `webgw controller`: watches (always, so a standby has a warm cache), leader election, and the
 * reconcilers' workers (only while leading). Events enqueue keys; reconcilers read caches.
 */
import { Resolver } from 'node:dns/promises';
import { hostname } from 'node:os';
import type { KubeConfig, KubernetesObject, V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { AdminServer } from '../common/admin-server.ts';
import { systemClock, type Clock, type Timer } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import { Lifecycle } from '../common/lifecycle.ts';
import type { Logger } from '../common/log.ts';
import type { ExposedService } from '../crds/types.ts';
import { GatewayReconciler } from './gateway/reconciler.ts';
import { ExposedServiceReconciler } from './exposedservice/reconciler.ts';
import { COMPONENT_LABEL } from './gateway/desired.ts';
import { HostnameVerifier } from './trust/verification.ts';
import { SessionProbe } from './sessions/probe.ts';
import { probeTargets } from './sessions/targets.ts';
import { AcmeIssuer } from './acme/issuer.ts';
import { ChallengeResponder } from './acme/responder.ts';
import { AgentOrders } from './acme/agent-orders.ts';
import { Controller, createControllerMetrics } from './runtime/controller.ts';
import { Coalesced } from './runtime/coalesce.ts';
import { SharedPlan, gatewayFingerprint, planFingerprint } from './exposedservice/shared-plan.ts';
import { SERVICE_LABEL, createCaches, type ControllerCaches, type WatchHandle } from './caches.ts';
import { KubeClient } from './runtime/kube.ts';
import { upgradeCrds } from './crd-upgrade.ts';
import { LeaderElector } from './runtime/leader-election.ts';
import { installationOwner } from './runtime/installation.ts';
import { EventRecorder } from './runtime/events.ts';
import { WebhookThread } from './webhook/thread.ts';
import { ensureCaBundle, ensureWebhookTls } from './webhook/serving-cert.ts';

/** How long a burst of changes gathers before every service (or gateway) is looked at again. */
const SWEEP_DELAY_MS = 500;
/**
 * Gateways gather longer: each of their reconciles rewrites the admitted-agents list (one
 * ConfigMap of up to 25,000 serials) and pokes the proxy pods, so a burst of new services is
 * admitted in a few writes a second, not one per service.
 */
const GATEWAY_SWEEP_DELAY_MS = 1500;

export interface ManagerOptions {
  kc: KubeConfig;
  /** Where proxy workloads, their Secrets and the leader Lease live. */
  namespace: string;
  image: string;
  leaderElection: boolean;
  identity?: string;
  admin?: { address: string; port: number };
  /**
   * Concurrent ExposedService reconciles (default 8: each waits on a few API calls, and keys are
   * independent; two made a 1,000-service burst wait on the API's latency, issue 15). Gateways
   * get two.
   */
  workers?: number;
  leaseDurationMs?: number;
  /** Keep the webgw CRDs at this version's schema while leading (crd-upgrade.ts). */
  manageCrds?: boolean;
  /** DNS server (`host:port`) for proof-of-control TXT lookups; the system's resolvers when absent. */
  dnsServer?: string;
  /** How often the leader reads every gateway replica's session table (default 10 s). */
  sessionProbeIntervalMs?: number;
  /** Gateways' spec.acme: CA certificates (PEM) trusted for ACME directories besides the system's. */
  acmeCaPem?: string;
  /** Gateways' spec.acme: delays before a failed order is retried (default 1 min doubling to 6 h). */
  acmeBackoff?: { initialMs: number; maxMs: number };
  /** Serve the injection webhook (every replica does; the Service balances over them). */
  webhook?: {
    address: string;
    port: number;
    hosts: string[];
    configurationName: string;
    /** webhook/worker.ts, or the worker.js it compiles to: the webhook runs on a thread of its own. */
    workerFile: string;
  };
  clock?: Clock;
  registry?: Registry;
  logger: Logger;
}

/** After the webhook admitted a pod, when it is surely stored (admission precedes the write). */
const POD_STORED_AFTER_MS = 2000;

const serviceKeyOf = (s: KubernetesObject): string => `${s.metadata!.namespace}/${s.metadata!.name}`;

export class Manager {
  readonly client: KubeClient;
  readonly registry: Registry;
  private readonly opts: ManagerOptions;
  private readonly clock: Clock;
  private readonly caches: ControllerCaches;
  private readonly watches: WatchHandle[];
  private readonly plan: SharedPlan;
  private readonly gatewayController: Controller;
  private readonly serviceController: Controller;
  private readonly serviceReconciler: ExposedServiceReconciler;
  private readonly probe: SessionProbe;
  private readonly acme: AcmeIssuer;
  private readonly elector: LeaderElector | undefined;
  /** The owner of the Lease and the webhook Secret (runtime/installation.ts), once found. */
  private installation: V1OwnerReference | undefined;
  private readonly admin: AdminServer | undefined;
  private readonly leaderGauge: Gauge;
  private leading = false;
  private readonly life = new Lifecycle();
  private webhookServer: WebhookThread | undefined;
  private webhookTimer: Timer | undefined;
  /**
   * Claims are global (first come per hostname and gateway): any change may move another
   * service's outcome, so every ExposedService is reconsidered, in one sweep per burst of changes
   * (the object that changed is queued at once). Reconciles without a change write nothing; the
   * plan itself is computed once per change (SharedPlan).
   */
  private readonly allServices: Coalesced;
  private readonly allGateways: Coalesced;
  /** A change of what the plan reads: the services whose plan moved. */
  private readonly changedPlans: Coalesced;

  /** Built in dependency order: caches → plan → readers of the edge → reconcilers → controllers → event routes. */
  constructor(opts: ManagerOptions) {
    this.opts = opts;
    const clock = (this.clock = opts.clock ?? systemClock);
    const log = opts.logger;
    const ns = opts.namespace;
    this.client = new KubeClient(opts.kc);
    this.registry = opts.registry ?? new Registry();
    if (!opts.registry) collectDefaultMetrics({ register: this.registry, prefix: 'webgw_controller_' });
    const metrics = createControllerMetrics(this.registry);
    this.leaderGauge = new Gauge({
      name: 'webgw_controller_leader',
      help: '1 while this process leads',
      registers: [this.registry],
    });
    const writes = new Counter({
      name: 'webgw_controller_api_writes_total',
      help: 'Writes sent to the API server, by verb (zero at rest)',
      labelNames: ['verb'],
      registers: [this.registry],
    });
    this.client.onWrite = (verb) => writes.inc({ verb });

    const { caches, all } = createCaches({ kc: opts.kc, client: this.client, namespace: ns, clock, logger: log });
    this.caches = caches;
    this.watches = all;
    const resolver = new Resolver({ timeout: 3000, tries: 2 });
    if (opts.dnsServer) resolver.setServers([opts.dnsServer]);
    const verifier = new HostnameVerifier((name) => resolver.resolveTxt(name), clock);
    this.plan = new SharedPlan(
      {
        services: caches.services,
        gateways: caches.gateways,
        namespaces: caches.namespaces,
        configMaps: caches.configMaps,
        namespace: ns,
        verifier,
      },
      clock,
    );

    this.probe = new SessionProbe({
      intervalMs: opts.sessionProbeIntervalMs ?? 10_000,
      clock,
      logger: log.child({ component: 'session-probe' }),
      targets: () => probeTargets(caches, ns),
      onGatewayChanged: (gw) => this.gatewayController.enqueue(gw),
      onServicesChanged: (_gw, identities) => {
        if (identities === 'all') return this.allServices.trigger();
        // `namespace/name/uid`: the reconciler reads the sessions by the same identity.
        for (const id of identities) this.serviceController.enqueue(id.split('/').slice(0, 2).join('/'));
      },
    });
    this.acme = new AcmeIssuer({
      client: this.client,
      namespace: ns,
      clock,
      logger: log.child({ component: 'acme' }),
      responder: new ChallengeResponder(clock),
      targetsOf: (gw) => probeTargets(caches, ns).find((t) => t.gateway === gw),
      onChanged: (gw) => this.gatewayController.enqueue(gw),
      ...(opts.acmeCaPem ? { extraCaPem: opts.acmeCaPem } : {}),
      ...(opts.acmeBackoff ? { backoff: opts.acmeBackoff } : {}),
    });
    const agentOrders = new AgentOrders({
      issuer: this.acme,
      clock,
      onChanged: (service) => this.serviceController.enqueue(service),
    });

    this.serviceReconciler = new ExposedServiceReconciler({
      client: this.client,
      caches,
      namespace: ns,
      image: opts.image,
      clock,
      verifier,
      onVerdictsChanged: () => this.planChanged(),
      claims: this.plan,
      sessionsOn: (gw, identity) => this.probe.observation(gw)?.forIdentity(identity),
      agentOrders,
      httpsTargets: (gw) => {
        const port = caches.gateways.get(gw)?.spec.listeners.https?.port;
        return port === undefined
          ? []
          : (probeTargets(caches, ns).find((t) => t.gateway === gw)?.replicas ?? []).map((r) => ({
              address: r.address,
              port,
            }));
      },
    });
    const gatewayReconciler = new GatewayReconciler({
      client: this.client,
      events: new EventRecorder(this.client, clock, log),
      caches,
      namespace: ns,
      image: opts.image,
      clock,
      logger: log.child({ controller: 'gateway' }),
      claims: this.plan,
      proxiesOf: (gw) => this.probe.observation(gw)?.proxies(),
      acme: this.acme,
    });
    this.gatewayController = new Controller({
      name: 'gateway',
      workers: 2,
      metrics,
      logger: log,
      reconcile: (key) => gatewayReconciler.reconcile(key),
    });
    const serviceReconciler = this.serviceReconciler;
    this.serviceController = new Controller({
      name: 'exposedservice',
      workers: opts.workers ?? 8,
      metrics,
      logger: log,
      reconcile: (key) => serviceReconciler.reconcile(key),
    });

    this.allServices = new Coalesced(clock, SWEEP_DELAY_MS, () => {
      for (const s of caches.services.list()) this.serviceController.enqueue(serviceKeyOf(s));
    });
    // Both sweeps below compute the claims plan: paced so that planning stays near a tenth of the loop.
    this.allGateways = new Coalesced(
      clock,
      () => this.plan.staleBudgetMs(GATEWAY_SWEEP_DELAY_MS),
      () => {
        for (const gw of caches.gateways.list()) this.gatewayController.enqueue(gw.metadata!.name!);
      },
    );
    this.changedPlans = new Coalesced(
      clock,
      () => this.plan.staleBudgetMs(SWEEP_DELAY_MS),
      () => {
        for (const key of this.plan.changedPlans()) this.serviceController.enqueue(key);
      },
    );
    this.routeEvents();

    if (opts.leaderElection) {
      this.elector = new LeaderElector({
        client: this.client,
        namespace: ns,
        name: 'webgw-controller',
        identity: opts.identity ?? `${hostname()}_${process.pid}`,
        ...(opts.leaseDurationMs
          ? {
              leaseDurationMs: opts.leaseDurationMs,
              renewDeadlineMs: Math.floor((opts.leaseDurationMs * 2) / 3),
              retryPeriodMs: Math.max(200, Math.floor(opts.leaseDurationMs / 7)),
            }
          : {}),
        clock,
        logger: log,
        onStartedLeading: () => this.lead(),
        onStoppedLeading: () => this.follow(),
        owner: () => this.installation,
      });
    }
    if (opts.admin) {
      this.admin = new AdminServer({
        ...opts.admin,
        registry: this.registry,
        notReadyReason: () => (this.watches.every((w) => w.hasSynced) ? undefined : 'caches not synced'),
      });
    }
  }

  /**
   * What each watched change queues, in one table (controller-runtime's For/Owns/Watches): the
   * object's own key, the Gateway that owns it, and the sweeps when it moves the claims plan.
   */
  private routeEvents(): void {
    const { caches } = this;
    // Our own status writes come back as events too: only what the plan reads re-plans.
    const planned = new Map<string, string>();
    const gatewaysSeen = new Map<string, string>();
    caches.services.onEvent((s) => {
      const key = serviceKeyOf(s);
      this.serviceController.enqueue(key);
      const live = caches.services.get(s.metadata.name, s.metadata.namespace);
      this.webhookServer?.serviceChanged(key, live);
      const print = live ? planFingerprint(live) : undefined;
      if (planned.get(key) === print) return;
      if (print === undefined) planned.delete(key);
      else planned.set(key, print);
      this.planChanged();
    });
    caches.gateways.onEvent((gw) => {
      const name = gw.metadata.name;
      this.gatewayController.enqueue(name);
      const live = caches.gateways.get(name);
      const print = live ? gatewayFingerprint(live) : undefined;
      if (gatewaysSeen.get(name) === print) return; // our own status write
      if (print === undefined) gatewaysSeen.delete(name);
      else gatewaysSeen.set(name, print);
      // Its spec is in the plan; its endpoints and addresses in every attached service's config and status.
      this.planChanged();
      this.allServices.trigger();
    });
    caches.namespaces.onEvent(() => this.planChanged());
    caches.credentialSecrets.onEvent((secret) => {
      const name = secret.metadata?.labels?.[SERVICE_LABEL];
      if (name) this.serviceController.enqueue(`${secret.metadata!.namespace}/${name}`);
      // A new or withdrawn certificate changes whom the gateways admit.
      this.allGateways.trigger();
    });
    const owned = (obj: KubernetesObject): void => {
      for (const key of GatewayReconciler.keysFor(obj)) this.gatewayController.enqueue(key);
      // Hostname reservations decide which claims the plan accepts; a gateway's CA Secret is what
      // the agents' certificates are issued from.
      if (obj.metadata?.labels?.[COMPONENT_LABEL] === 'reservations') this.planChanged();
      else if ((obj as V1Secret).data?.['ca.key'] !== undefined) this.allServices.trigger();
    };
    caches.secrets.onEvent(owned);
    caches.configMaps.onEvent(owned);
    caches.pods.onEvent(owned);
    caches.daemonSets.onEvent(owned);
    caches.deployments.onEvent(owned);
    caches.nodes.onEvent(() => this.allGateways.trigger());
  }

  /** What the claims plan reads changed: plan again, then the services whose plan moved and every gateway. */
  private planChanged(): void {
    this.plan.invalidate();
    this.changedPlans.trigger();
    this.allGateways.trigger();
  }

  /** ExposedServices of a namespace from the cache (the webhook reads these). */
  exposedServicesIn(namespace: string): readonly ExposedService[] {
    return this.caches.services.list(namespace);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  async start(): Promise<{ webhookPort?: number }> {
    await Promise.all(this.watches.map((w) => w.start()));
    await this.admin?.start();
    const webhookPort = await this.startWebhook();
    if (this.elector) this.elector.start();
    else this.lead();
    return webhookPort === undefined ? {} : { webhookPort };
  }

  /** Webhook TLS from its Secret, the server, and the caBundle kept in the configuration. */
  private async startWebhook(): Promise<number | undefined> {
    const w = this.opts.webhook;
    if (!w) return undefined;
    this.installation = await installationOwner(this.client, w.configurationName);
    const tls = await ensureWebhookTls(this.client, this.opts.namespace, w.hosts, this.clock.date(), this.installation);
    this.webhookServer = new WebhookThread({
      workerFile: w.workerFile,
      address: w.address,
      port: w.port,
      certPem: tls.serving.certPem,
      keyPem: tls.serving.keyPem,
      image: this.opts.image,
      snapshot: () => this.caches.services.list(),
      clock: this.clock,
      logger: this.opts.logger.child({ component: 'webhook' }),
      onInjected: (namespace, service) => {
        const key = `${namespace}/${service}`;
        const relist = (): void => {
          this.serviceReconciler.podsChanged(key);
          if (this.leading) this.serviceController.enqueue(key);
        };
        relist();
        // Admission runs before the pod is stored: a list taken now may miss it (then the status
        // said "no selected pod runs the agent" until its agent connected). Look again once it is.
        this.clock.setTimeout(relist, POD_STORED_AFTER_MS);
      },
    });
    const { port } = await this.webhookServer.start();
    // The configuration may be installed after us, and the serving certificate renews: recheck.
    const keep = async (): Promise<void> => {
      try {
        // The configuration may be installed after us (then the owner is found now).
        this.installation ??= await installationOwner(this.client, w.configurationName);
        const current = await ensureWebhookTls(
          this.client,
          this.opts.namespace,
          w.hosts,
          this.clock.date(),
          this.installation,
        );
        this.webhookServer?.setCertificate(current.serving.certPem, current.serving.keyPem);
        if (await ensureCaBundle(this.client, w.configurationName, current.ca.certPem)) {
          this.opts.logger.info('webhook caBundle written', { configuration: w.configurationName });
        }
      } catch (err) {
        this.opts.logger.warn('cannot maintain the webhook certificate', { err: describeError(err) });
      }
      if (!this.life.stopping) this.webhookTimer = this.clock.setTimeout(() => void keep(), 30_000);
    };
    await keep();
    return port;
  }

  /** Stops reconciling, releases the lease (a standby takes over at once), then stops serving. */
  close(): Promise<void> {
    return this.life.close(async () => {
      this.stopActing();
      await this.elector?.close();
      await Promise.all([this.gatewayController.pause(), this.serviceController.pause()]);
      await Promise.all(this.watches.map((w) => w.close()));
      await this.webhookServer?.close();
      await this.admin?.close();
    });
  }

  /** Stops now: reconciles in flight are abandoned and the lease is left to expire. */
  destroy(): void {
    this.life.destroy(() => {
      this.stopActing();
      this.elector?.destroy();
      void this.gatewayController.pause();
      void this.serviceController.pause();
      for (const w of this.watches) void w.close();
      this.webhookServer?.destroy();
      void this.admin?.close();
    });
  }

  private stopActing(): void {
    this.probe.pause();
    this.acme.pause();
    for (const sweep of [this.allServices, this.allGateways, this.changedPlans]) sweep.cancel();
    this.webhookTimer?.cancel();
  }

  private lead(): void {
    if (this.leading) return;
    this.leading = true;
    this.leaderGauge.set(1);
    if (this.opts.manageCrds) {
      upgradeCrds(this.client, this.opts.logger).catch((err: unknown) =>
        this.opts.logger.error('cannot upgrade the CRDs', { err: describeError(err) }),
      );
    }
    this.acme.start();
    this.gatewayController.start();
    this.serviceController.start();
    this.probe.start();
    for (const gw of this.caches.gateways.list()) this.gatewayController.enqueue(gw.metadata!.name!);
    for (const s of this.caches.services.list())
      this.serviceController.enqueue(`${s.metadata!.namespace}/${s.metadata!.name}`);
  }

  private follow(): void {
    if (!this.leading) return;
    // Like controller-runtime: a process that lost its lease stops acting; its workers end.
    this.leading = false;
    this.leaderGauge.set(0);
    this.probe.pause();
    this.acme.pause();
    void this.gatewayController.pause();
    void this.serviceController.pause();
    if (!this.life.stopping) this.opts.logger.warn('lost leadership: stopped reconciling');
  }
}
