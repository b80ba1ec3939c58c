/**
 * The ExposedService reconciler: plan claims over every Gateway and ExposedService (claims.ts),
 * issue or keep one agent certificate per accepted gateway (grants exactly as planned, renewed
 * at two thirds of its lifetime), apply the credential Secret, write the status when it changed.
 */
import type { KubernetesObject, V1Pod, V1Secret } from '@kubernetes/client-node';
import type { Clock } from '../../common/clock.ts';
import { WebgwError, describeError } from '../../common/errors.ts';
import type { ExposedService, Gateway } from '../../crds/types.ts';
import type { GrantSet } from '../../pki/grants.ts';
import { issueAgentCertificate, validFor, type KeyPairPem } from '../../pki/issue.ts';
import type { ControllerCaches } from '../caches.ts';
import type { ReconcileResult } from '../runtime/controller.ts';
import { statusCode, type KubeClient } from '../runtime/kube.ts';
import { appliedHashOf, applyIfChanged, canonicalJson, secretText, withAppliedHash } from '../runtime/apply.ts';
import { isControlledBy } from '../runtime/ownership.ts';
import { certificateFits, grantsServe, plannedGrants, serviceIdentity } from '../trust/admission.ts';
import { RETRY_MS, type HostnameVerifier } from '../trust/verification.ts';
import { renewalTime } from '../../pki/lifetime.ts';
import { gatewayObjectNames } from '../gateway/desired.ts';
import { needsProof, resolveGateways, routeHostnames, serviceKey, type GatewayPlan } from './claims.ts';
import type { SharedPlan } from './shared-plan.ts';
import {
  credentialSecret,
  credentialSecretName,
  serviceStatus,
  type AgentCredential,
  type ExposedServiceInputs,
} from './desired.ts';
import { AGENT_CONTAINER } from '../webhook/injector.ts';
import { connectorDeployment, connectorName, connectorReplicas } from './connector.ts';
import type { ReplicaSessions } from '../sessions/observations.ts';
import type { AgentOrders, HttpsTarget } from '../acme/agent-orders.ts';
import { agentCertificates } from './agent-certificates.ts';

export const AGENT_CERT_VALIDITY_MS = 24 * 3600_000;
/**
 * At most this long between two lists of a service's pods. Not shorter while no agent is
 * connected: 5,000 services without agents made 166 LISTs a second at rest (issue 15).
 */
const POD_RECHECK_MS = 10 * 60_000;
const PLAN_STALE_MS = 250;

/** What the reconciler reads: services, gateways, namespaces, tenants' credential Secrets, and the gateways' CA Secrets (`secrets`). */
export type ExposedServiceCaches = Pick<
  ControllerCaches,
  'services' | 'gateways' | 'namespaces' | 'credentialSecrets' | 'secrets'
>;

export interface ExposedServiceReconcilerOptions {
  client: KubeClient;
  caches: ExposedServiceCaches;
  namespace: string;
  /** The webgw image, for connector Deployments. */
  image: string;
  clock: Clock;
  /** Proof of control of external hostnames (Gateways with hostnamePolicy.external: Verified). */
  verifier?: HostnameVerifier;
  /** A verdict changed: every plan may change with it. */
  onVerdictsChanged?: () => void;
  /** The claims plan over every service, shared with the Gateway reconciler. */
  claims: SharedPlan;
  /** This service's sessions on a gateway's replicas, as last read; undefined: not read yet. */
  sessionsOn?: (gateway: string, identity: string) => readonly ReplicaSessions[] | undefined;
  /** Orders the certificates of TLS routes the agents terminate; without it none is ordered. */
  agentOrders?: AgentOrders;
  /** A gateway's replicas at their HTTPS listener (where TLS-ALPN-01 validations land). */
  httpsTargets?: (gateway: string) => HttpsTarget[];
}

interface PodView {
  withAgent: number;
  withoutAgent: string[];
}

export class ExposedServiceReconciler {
  private readonly opts: ExposedServiceReconcilerOptions;
  /** Per service: its pods as last listed, and what they were listed for. */
  private readonly podViews = new Map<string, PodView & { version: string; sessions: number; at: number }>();

  constructor(opts: ExposedServiceReconcilerOptions) {
    this.opts = opts;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const { caches, clock } = this.opts;
    const service = caches.services.get(name, namespace);
    if (!service) {
      this.podViews.delete(key);
      this.opts.agentOrders?.forget(key);
      return {}; // deleted: its Secret goes with it (owner reference)
    }
    const now = clock.date();
    const gateways = caches.gateways.list();
    const pendingProof = await this.proveHostnames(service, gateways);
    // A plan up to staleMs old (then this service is looked at again, with a newer one).
    const staleMs = this.opts.claims.staleBudgetMs(PLAN_STALE_MS);
    const claims = this.opts.claims.get({ maxStaleMs: staleMs, needs: serviceKey(service) });
    const plan = claims.plans.get(serviceKey(service));
    if (!plan) return {};

    const owner = { kind: 'ExposedService' as const, name, uid: service.metadata.uid };
    const cached = caches.credentialSecrets.get(credentialSecretName(name), namespace);
    // Only a Secret we made for this very ExposedService is ours to read or write.
    const current = isControlledBy(cached, owner) ? cached : undefined;
    const credentials = new Map<string, AgentCredential>();
    let nextRenewal = Infinity;
    for (const gp of plan.gateways.filter(grantsServe)) {
      const ca = this.gatewayCA(gp.gateway);
      if (!ca) continue; // the Gateway reconciler has not created it yet; its event requeues us
      const grants = plannedGrants(service, gp);
      const kept = this.keepable(current, gp, ca, grants, now);
      const cred = kept ?? this.issue(ca, grants, now);
      credentials.set(gp.gateway, cred);
      nextRenewal = Math.min(nextRenewal, renewalTime(cred.certPem).getTime());
    }

    const identity = serviceIdentity(service);
    const sessions = new Map<string, readonly ReplicaSessions[]>();
    for (const gw of credentials.keys()) {
      const seen = this.opts.sessionsOn?.(gw, identity);
      if (seen) sessions.set(gw, seen);
    }
    const pods =
      service.spec.mode === 'Sidecar'
        ? await this.agentPods(key, service, sessions)
        : { withAgent: connectorReplicas(service), withoutAgent: [] };
    const byName = new Map(gateways.map((g) => [g.metadata.name, g]));
    const agentTls = this.opts.agentOrders
      ? agentCertificates({
          service,
          plan,
          plans: claims.plans,
          neighbours: caches.services.list(namespace),
          gateways: byName,
          current,
          agents: pods.withAgent,
          httpsTargets: this.opts.httpsTargets ?? (() => []),
          orders: this.opts.agentOrders,
          now,
        })
      : undefined;
    const inputs: ExposedServiceInputs = {
      service,
      plan,
      gateways: byName,
      credentials,
      podsWithoutAgent: pods.withoutAgent,
      agentPods: pods.withAgent,
      sessions,
      now,
      ...(agentTls ? { agentTls: agentTls.names } : {}),
    };
    // Apply, then one status write that says how the apply went, also when it failed (then the
    // reconcile is retried with backoff).
    const inTheWay: string[] = [];
    let applyError: string | undefined;
    try {
      const secretInTheWay = cached !== undefined && current === undefined;
      if (secretInTheWay || !(await this.writeOwned(credentialSecret(inputs), current)))
        inTheWay.push(`Secret ${namespace}/${credentialSecretName(name)}`);
      if (service.spec.mode === 'Connector' && !(await this.applyConnector(service)))
        inTheWay.push(`Deployment ${namespace}/${connectorName(name)}`);
    } catch (err) {
      applyError = describeError(err); // the controller logs it with the retry
    }
    const status = serviceStatus({ ...inputs, inTheWay, ...(applyError ? { applyError } : {}) });
    if (canonicalJson(status) !== canonicalJson(service.status ?? {})) {
      await this.opts.client.patchNamespacedStatus('exposedservices', namespace, name, status, service.status);
    }
    if (applyError) throw new WebgwError('WEBGW_ERR_KUBE', applyError);
    // Pods are listed, not watched (agentPods): look again by POD_RECHECK_MS.
    const untilRenewal = Number.isFinite(nextRenewal) ? Math.max(1000, nextRenewal - now.getTime()) : Infinity;
    const untilAgentTls =
      agentTls && Number.isFinite(agentTls.nextLook) ? Math.max(1000, agentTls.nextLook - now.getTime()) : Infinity;
    const requeue = Math.min(
      untilRenewal,
      untilAgentTls,
      service.spec.mode === 'Sidecar' ? POD_RECHECK_MS : Infinity,
      pendingProof ? RETRY_MS : Infinity,
      claims.stale ? staleMs : Infinity,
    );
    return Number.isFinite(requeue) ? { requeueAfterMs: requeue } : {};
  }

  /**
   * Creates `obj` when nothing is there (a create fails when something of that name appeared,
   * which we then leave alone), or applies it over our own `current`. False: something else is
   * in the way.
   */
  private async writeOwned(obj: KubernetesObject, current: KubernetesObject | undefined): Promise<boolean> {
    if (current) {
      await applyIfChanged(this.opts.client, obj, appliedHashOf(current));
      return true;
    }
    try {
      await this.opts.client.create(withAppliedHash(obj));
      return true;
    } catch (err) {
      if (statusCode(err) === 409) return false;
      throw err;
    }
  }

  /**
   * Gather step for hostnames that need proof of control: looks up this service's names (cached
   * verdicts for everyone else's). Returns whether some are still unproven (look again soon).
   */
  private async proveHostnames(service: ExposedService, gateways: readonly Gateway[]): Promise<boolean> {
    const { verifier } = this.opts;
    const ns = this.opts.caches.namespaces.get(service.metadata.namespace ?? '');
    const uid = ns?.metadata?.uid;
    if (!verifier || !uid) return false;
    const labels = ns?.metadata?.labels ?? {};
    const names = new Set<string>();
    for (const g of resolveGateways(service, gateways).found) {
      for (const route of service.spec.routes) {
        if (route.protocol !== 'TCP')
          for (const h of routeHostnames(route, g)) if (needsProof(h, g, labels)) names.add(h);
      }
    }
    const pairs = [...names].map((hostname) => ({ hostname, namespaceUid: uid }));
    if (pairs.length === 0) return false;
    if (await verifier.refresh(pairs)) this.opts.onVerdictsChanged?.();
    return pairs.some((p) => !verifier.verified(p.hostname, p.namespaceUid));
  }

  /** The connector Deployment, when what is there is ours (or nothing is). False: something else is in the way. */
  private async applyConnector(service: ExposedService): Promise<boolean> {
    const deployment = connectorDeployment(service, this.opts.image);
    const { name, namespace } = deployment.metadata as { name: string; namespace: string };
    let live;
    try {
      live = await this.opts.client.apps.readNamespacedDeployment({ name, namespace });
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
    }
    if (
      live &&
      !isControlledBy(live, { kind: 'ExposedService', name: service.metadata.name, uid: service.metadata.uid })
    )
      return false;
    return this.writeOwned(deployment, live);
  }

  /** A pod of this service was just given the agent (the webhook): list its pods again next time. */
  podsChanged(key: string): void {
    this.podViews.delete(key);
  }

  /**
   * Running or pending pods the selector matches: how many run the agent, and those that do not.
   * Pods are listed, not watched (a tenant's pods are not the controller's to cache): again when
   * the ExposedService's spec or annotations changed (annotating it asks for a new look; our own
   * status writes do not count), when the number of its agents' sessions did (pods came or went),
   * when this process's webhook gave one of its pods the agent (podsChanged), and at least every
   * POD_RECHECK_MS; not on every reconcile (issue 15: these lists were nearly all of the API
   * requests at rest).
   */
  private async agentPods(
    key: string,
    service: ExposedService,
    sessions: ReadonlyMap<string, readonly ReplicaSessions[]>,
  ): Promise<PodView> {
    const version = `${service.metadata.generation ?? 0} ${canonicalJson(service.metadata.annotations ?? {})}`;
    const connected = [...sessions.values()].flat().reduce((n, r) => n + r.sessions, 0);
    const now = this.opts.clock.now();
    const known = this.podViews.get(key);
    if (known && known.version === version && known.sessions === connected && now - known.at < POD_RECHECK_MS)
      return known;
    const selector = Object.entries(service.spec.selector ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    let view: PodView = { withAgent: 0, withoutAgent: [] };
    if (selector) {
      const list = await this.opts.client.core.listNamespacedPod({
        namespace: service.metadata.namespace ?? '',
        labelSelector: selector,
      });
      const live = list.items.filter(
        (p) =>
          !p.metadata?.deletionTimestamp &&
          (p.status?.phase === 'Running' || p.status?.phase === 'Pending' || !p.status?.phase),
      );
      const hasAgent = (p: V1Pod): boolean =>
        [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].some((c) => c.name === AGENT_CONTAINER);
      view = {
        withAgent: live.filter(hasAgent).length,
        withoutAgent: live
          .filter((p) => !hasAgent(p))
          .map((p) => p.metadata?.name ?? '')
          .sort(),
      };
    }
    this.podViews.set(key, { ...view, version, sessions: connected, at: now });
    return view;
  }

  private gatewayCA(gateway: string): KeyPairPem | undefined {
    const s = this.opts.caches.secrets.get(gatewayObjectNames(gateway).caSecret, this.opts.namespace);
    const certPem = secretText(s, 'ca.crt');
    const keyPem = secretText(s, 'ca.key');
    return certPem && keyPem ? { certPem, keyPem } : undefined;
  }

  /** The certificate in our Secret, if it still fits the plan and is before 2/3 of its life. */
  private keepable(
    current: V1Secret | undefined,
    gp: GatewayPlan,
    ca: KeyPairPem,
    grants: GrantSet,
    now: Date,
  ): AgentCredential | undefined {
    const certPem = secretText(current, `${gp.gateway}.crt`);
    const keyPem = secretText(current, `${gp.gateway}.key`);
    if (!certPem || !keyPem || !certificateFits(certPem, ca.certPem, grants)) return undefined;
    try {
      if (renewalTime(certPem) <= now) return undefined;
    } catch {
      return undefined;
    }
    return { certPem, keyPem, caPem: ca.certPem };
  }

  private issue(ca: KeyPairPem, grants: GrantSet, now: Date): AgentCredential {
    const pair = issueAgentCertificate(ca, grants, validFor(now, AGENT_CERT_VALIDITY_MS));
    return { certPem: pair.certPem, keyPem: pair.keyPem, caPem: ca.certPem };
  }
}
