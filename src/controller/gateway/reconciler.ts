/**
 * The Gateway reconciler: gather (cache reads) → desiredGateway() (pure) → apply (server-side
 * apply, skipped when the object already carries the hash of what we would write) → one status
 * write when the status changed. A steady cluster produces zero writes.
 */
import { createHash } from 'node:crypto';
import type { KubernetesObject, V1DaemonSet, V1Deployment, V1Secret } from '@kubernetes/client-node';
import type { Clock } from '../../common/clock.ts';
import { WebgwError, describeError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import type { Condition } from '../../crds/conditions.ts';
import { API_VERSION, type AcmeFailureStatus, type ExposedService, type Gateway } from '../../crds/types.ts';
import type { ServicePlan } from '../exposedservice/claims.ts';
import type { KeyPairPem } from '../../pki/issue.ts';
import type { SharedPlan } from '../exposedservice/shared-plan.ts';
import { credentialSecretName } from '../exposedservice/desired.ts';
import { admittedAgents, type Admission } from '../trust/admission.ts';
import { nextTurn } from '../runtime/loop-turns.ts';
import { nextReservations } from '../trust/reservations.ts';
import { controllerReference } from '../runtime/ownership.ts';
import type { KubeClient } from '../runtime/kube.ts';
import { statusCode } from '../runtime/kube.ts';
import { appliedHashOf, applyIfChanged, canonicalJson, secretText } from '../runtime/apply.ts';
import type { ControllerCaches } from '../caches.ts';
import type { ReconcileResult } from '../runtime/controller.ts';
import type { Watched } from '../runtime/informer.ts';
import type { EventRecorder } from '../runtime/events.ts';
import {
  ADMITTED_DIGEST_ANNOTATION,
  COMPONENT_LABEL,
  GATEWAY_LABEL,
  SHARE_PORTS_LABEL,
  desiredGatewayObjects,
  type GatewayObject,
  gatewayObjectNames,
  type TunnelCredentials,
} from './desired.ts';
import { issueTunnelCertificate, newGatewayCA, tunnelRenewalTime } from './credentials.ts';
import { gatewayStatus } from './status.ts';
import { inspectCertificate, type InspectedCertificate } from './served-certificate.ts';
import {
  ACME_COMPONENT,
  ACME_HOSTNAME_ANNOTATION,
  readAcmeCertificate,
  type AcmeCertificate,
} from '../acme/certificates.ts';
import type { AcmeIssuer } from '../acme/issuer.ts';
import { acmeWanted } from '../acme/wanted.ts';

/**
 * How often spec.tls's Secret is read again when nothing else brings the Gateway back: a renewed
 * certificate (cert-manager renews weeks before expiry) reaches the proxies within this time.
 * One GET per Gateway per interval; watching every Secret of the cluster would cost more.
 */
const CERTIFICATE_RECHECK_MS = 5 * 60_000;
import type { ProxyReplicaStatus } from '../sessions/observations.ts';

/** Memoizes a parse of a Secret by uid and resourceVersion; the parse is re-run when it changes. */
class ParsedSecrets<T> {
  private readonly parse: (secret: V1Secret, now: Date) => T | undefined;
  private readonly parsed = new Map<string, { version: string; value: T | undefined }>();

  constructor(parse: (secret: V1Secret, now: Date) => T | undefined) {
    this.parse = parse;
  }

  read(secret: V1Secret, now: Date): T | undefined {
    const key = secret.metadata?.uid ?? secret.metadata?.name ?? '';
    const version = secret.metadata?.resourceVersion ?? '';
    const known = this.parsed.get(key);
    // A cached result still has to be valid now: re-parse it (cheap) once it may have expired.
    if (known && known.version === version && known.value !== undefined && stillValid(known.value, now))
      return known.value;
    const value = this.parse(secret, now);
    if (this.parsed.size > 10_000) this.parsed.clear();
    this.parsed.set(key, { version, value });
    return value;
  }
}

function stillValid(value: unknown, now: Date): boolean {
  const notAfter = (value as { status?: { notAfter?: string } }).status?.notAfter;
  return notAfter === undefined || Date.parse(notAfter) > now.getTime();
}

/** The Gateway reconciler reads every cache the controller keeps (caches.ts). */
export type GatewayCaches = ControllerCaches;

export interface GatewayReconcilerOptions {
  client: KubeClient;
  events: EventRecorder;
  caches: GatewayCaches;
  namespace: string;
  image: string;
  clock: Clock;
  logger: Logger;
  /** The claims plan over every service, shared with the ExposedService reconciler. */
  claims: SharedPlan;
  /** Each replica's sessions and routes as last read (controller/sessions); undefined: not read yet. */
  proxiesOf?: (gateway: string) => readonly ProxyReplicaStatus[] | undefined;
  /** Orders certificates for spec.acme (acme/issuer.ts); without it spec.acme orders nothing. */
  acme?: AcmeIssuer;
}

/** A Gateway reconcile may take a claims plan this old, or ten times what one costs (shared-plan.ts). */
const PLAN_STALE_MS = 1000;

const involved = (gw: Gateway) => ({
  apiVersion: API_VERSION,
  kind: 'Gateway',
  name: gw.metadata.name,
  ...(gw.metadata.uid ? { uid: gw.metadata.uid } : {}),
});

export class GatewayReconciler {
  private readonly opts: GatewayReconcilerOptions;
  /** Parsed ACME certificate Secrets, by uid and resourceVersion: each is parsed once. */
  private readonly acmeCertificates = new ParsedSecrets(readAcmeCertificate);
  /** Per gateway: the last admission and what it was computed from. */
  private readonly admissions = new Map<
    string,
    { plans: ReadonlyMap<string, ServicePlan>; secrets: number; caPem: string; admission: Admission }
  >();

  constructor(opts: GatewayReconcilerOptions) {
    this.opts = opts;
  }

  /**
   * Whom the gateway admits (trust/admission.ts), computed again only when the plan or a
   * credential Secret changed: most Gateway reconciles follow our own writes (its ConfigMaps, its
   * status), and going over every service's certificate each time made a burst quadratic (issue 15).
   */
  private admission(
    gateway: string,
    caPem: string,
    services: readonly ExposedService[],
    plans: ReadonlyMap<string, ServicePlan>,
  ): Admission {
    const { credentialSecrets } = this.opts.caches;
    const secrets = credentialSecrets.changes;
    const memo = this.admissions.get(gateway);
    if (memo && memo.plans === plans && memo.secrets === secrets && memo.caPem === caPem) return memo.admission;
    const admission = admittedAgents({
      gateway,
      caPem,
      services,
      plans,
      credentialOf: (s) => credentialSecrets.get(credentialSecretName(s.metadata.name), s.metadata.namespace),
    });
    this.admissions.set(gateway, { plans, secrets, caPem, admission });
    return admission;
  }

  /** Which Gateway an event on a watched object concerns. */
  static keysFor(obj: KubernetesObject): string[] {
    const name = obj.metadata?.labels?.[GATEWAY_LABEL];
    return name ? [name] : [];
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    const { caches, namespace, clock } = this.opts;
    const gw = caches.gateways.get(name);
    if (!gw) {
      this.admissions.delete(name);
      return {}; // deleted: owner references let the garbage collector remove the rest
    }
    const now = clock.date();
    const names = gatewayObjectNames(name);

    const ca = await this.ensureCA(gw, now);
    const cachedTunnel = caches.secrets.get(names.tunnelSecret, namespace);
    const current: TunnelCredentials | undefined = cachedTunnel
      ? {
          caPem: secretText(cachedTunnel, 'ca.crt') ?? '',
          certPem: secretText(cachedTunnel, 'tls.crt') ?? '',
          keyPem: secretText(cachedTunnel, 'tls.key') ?? '',
        }
      : undefined;
    const renewAt = tunnelRenewalTime(current, ca);
    const credentials = current && renewAt && renewAt > now ? current : issueTunnelCertificate(name, ca, now);
    const nextRenewal = tunnelRenewalTime(credentials, ca) as Date;

    const selector = (o: KubernetesObject): boolean => o.metadata?.labels?.[GATEWAY_LABEL] === name;
    const proxyPods = caches.pods.list(namespace).filter(selector);
    // Until every pod of an older template is gone, a rollout may not start pods beside them.
    const runningPodsSharePorts = proxyPods.every((p) => p.metadata?.labels?.[SHARE_PORTS_LABEL] === 'true');
    const pods = proxyPods.map((p) => ({
      name: p.metadata?.name ?? '',
      ...(p.spec?.nodeName ? { nodeName: p.spec.nodeName } : {}),
      ready:
        p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true &&
        !p.metadata?.deletionTimestamp,
    }));
    const nodes = caches.nodes
      .list()
      .map((n) => ({ name: n.metadata?.name ?? '', addresses: n.status?.addresses ?? [] }));
    const ds = caches.daemonSets.get(names.workload, namespace);
    const deploy = caches.deployments.get(names.workload, namespace);
    const desiredReplicas = gw.spec.placement.replicas ?? ds?.status?.desiredNumberScheduled ?? 0;

    // The claims plan decides whom this gateway admits and which names stay reserved for whom.
    // During a burst it may be up to staleMs old (then the gateway is looked at again): an agent
    // of a service created or deleted in that window is admitted or dropped one look later. A
    // fresh plan each time made every Gateway reconcile of a 5,000-service burst pay for one.
    const services = caches.services.list();
    const staleMs = this.opts.claims.staleBudgetMs(PLAN_STALE_MS);
    const { plans, reserved, stale } = this.opts.claims.get({ maxStaleMs: staleMs });
    // Each of these three goes over every service: one per turn of the loop (loop-turns.ts).
    await nextTurn();
    const admission = this.admission(name, ca.certPem, services, plans);
    await nextTurn();
    const { reservations, nextExpiry } = nextReservations(name, reserved.get(name) ?? new Map(), plans, now);
    const admitted = { admittedAgents: admission.serials, admissionOmitted: admission.omitted, reservations };
    let applyError: string | undefined;
    const attachedServices = [...plans.values()].filter((p) =>
      p.gateways.some((g) => g.gateway === name && g.accepted),
    ).length;
    const proxies = this.opts.proxiesOf?.(name) ?? gw.status?.proxies;
    const certificate = await this.readCertificate(gw, now);
    const acme = await this.acmeState(gw, plans.values(), now);
    const observed = {
      credentials,
      pods,
      nodes,
      desiredReplicas,
      runningPodsSharePorts,
      attachedServices,
      ...(proxies ? { proxies } : {}),
      ...(certificate ? { certificate } : {}),
      acme,
      ...admitted,
    };
    const inputs = { gateway: gw, namespace, image: this.opts.image, ...observed, now };
    for (const obj of desiredGatewayObjects(inputs).objects) {
      try {
        await this.applyIfChanged(obj);
      } catch (err) {
        applyError = `${obj.kind} ${obj.metadata?.name}: ${describeError(err)}`;
        this.opts.logger.warn('apply failed', { gateway: name, err: applyError });
        break;
      }
    }
    // A DaemonSet replaced by a Deployment (or the reverse) when spec.placement.replicas changes.
    if (!applyError) await this.deleteOtherWorkload(gw, ds, deploy);
    if (!applyError)
      await this.pokeProxyPods(name, [
        ...admission.serials,
        certificate?.ready ? certificate.certPem : '',
        ...acme.certificates.map((c) => c.certPem),
      ]);
    const status = gatewayStatus({ ...inputs, ...(applyError ? { applyError } : {}) });
    if (canonicalJson(status) !== canonicalJson(gw.status ?? {})) {
      await this.opts.client.patchClusterStatus('gateways', name, status, gw.status);
      await this.recordFlips(gw, status.conditions ?? []);
    }
    if (applyError) throw new WebgwError('WEBGW_ERR_KUBE', applyError);
    const certificateLook = !gw.spec.tls
      ? Infinity
      : Math.min(
          now.getTime() + CERTIFICATE_RECHECK_MS,
          certificate?.ready ? Date.parse(certificate.status.notAfter) + 1000 : Infinity,
        );
    const acmeLook = Math.min(
      ...acme.certificates.map((c) => Math.min(Date.parse(c.status.renewAt), Date.parse(c.status.notAfter))),
      ...acme.failures.map((f) => Date.parse(f.retryAt)),
    );
    const nextLook = Math.min(nextRenewal.getTime(), nextExpiry?.getTime() ?? Infinity, certificateLook, acmeLook);
    if (stale) return { requeueAfterMs: staleMs };
    return { requeueAfterMs: Math.max(1000, nextLook - now.getTime()) };
  }

  /**
   * spec.acme: the certificates stored for this Gateway (valid now) for the names the plan still
   * serves here; orders for the names without one or due for renewal; Secrets of names no
   * longer served are deleted (their certificates leave the edge).
   */
  private async acmeState(
    gw: Gateway,
    plans: Iterable<ServicePlan>,
    now: Date,
  ): Promise<{ certificates: AcmeCertificate[]; failures: AcmeFailureStatus[]; omitted: string[] }> {
    const { caches, namespace } = this.opts;
    const name = gw.metadata.name;
    // Without an issuer (a reconciler built for tests) nothing is ordered, and nothing deleted.
    if (!this.opts.acme) return { certificates: [], failures: [], omitted: [] };
    const wanted = acmeWanted(gw, plans);
    const stored = caches.secrets
      .list(namespace)
      .filter(
        (s) => s.metadata?.labels?.[GATEWAY_LABEL] === name && s.metadata.labels[COMPONENT_LABEL] === ACME_COMPONENT,
      );
    const certificates: AcmeCertificate[] = [];
    for (const secret of stored) {
      const cert = this.acmeCertificates.read(secret, now);
      if (cert && wanted.names.has(cert.hostname)) {
        certificates.push(cert);
        continue;
      }
      const hostname = cert?.hostname ?? secret.metadata?.annotations?.[ACME_HOSTNAME_ANNOTATION];
      if (hostname && wanted.names.has(hostname)) continue; // expired or unreadable: ordered again below
      await this.opts.client.deleteSecret(secret.metadata?.name ?? '', namespace);
    }
    const due = [...wanted.names.keys()].filter((h) => {
      const cert = certificates.find((c) => c.hostname === h);
      return !cert || Date.parse(cert.status.renewAt) <= now.getTime();
    });
    this.opts.acme.request(gw, due, gw.status?.acme?.failures ?? []);
    const failures = this.opts.acme.failures(name, new Set(wanted.names.keys()));
    return { certificates, failures, omitted: wanted.omitted };
  }

  /** spec.tls's Secret, read now (not cached: it may be in any namespace) and checked. */
  private async readCertificate(gw: Gateway, now: Date): Promise<InspectedCertificate | undefined> {
    const ref = gw.spec.tls?.certificateRef;
    if (!ref) return undefined;
    let secret: V1Secret | undefined;
    try {
      secret = await this.opts.client.core.readNamespacedSecret({ name: ref.name, namespace: ref.namespace });
    } catch (err) {
      if (statusCode(err) !== 404 && statusCode(err) !== 403) throw err;
    }
    return inspectCertificate(secret, ref, gw.spec.domain, now);
  }

  /**
   * A kubelet refreshes a pod's ConfigMap and Secret volumes at its next sync of the pod: up to a
   * minute or more later (a real node took 82 s to carry a withdrawn agent to the proxy, issue
   * 13), unless the pod itself changes. So each proxy pod is annotated with a digest of what it
   * reloads (the admitted agents, the served certificate): the kubelet syncs it at once and the
   * proxy sees the change within a second. One patch per pod per change, none at rest.
   */
  private async pokeProxyPods(gateway: string, reloaded: readonly string[]): Promise<void> {
    const digest = createHash('sha256').update(reloaded.join('\n')).digest('hex').slice(0, 16);
    for (const pod of this.opts.caches.pods.list(this.opts.namespace)) {
      if (pod.metadata?.labels?.[GATEWAY_LABEL] !== gateway || pod.metadata.deletionTimestamp) continue;
      if (pod.metadata.annotations?.[ADMITTED_DIGEST_ANNOTATION] === digest) continue;
      try {
        await this.opts.client.annotatePod(
          this.opts.namespace,
          pod.metadata.name ?? '',
          ADMITTED_DIGEST_ANNOTATION,
          digest,
        );
      } catch (err) {
        // The kubelet still refreshes the volume at its own pace: late, never wrong.
        if (statusCode(err) !== 404)
          this.opts.logger.warn("cannot annotate a proxy pod; its admitted agents refresh at the kubelet's pace", {
            pod: pod.metadata.name,
            err: describeError(err),
          });
      }
    }
  }

  /** The CA Secret is created once; an existing one is used as it is, forever. */
  private async ensureCA(gw: Gateway, now: Date): Promise<KeyPairPem> {
    const { caches, namespace } = this.opts;
    const secretName = gatewayObjectNames(gw.metadata.name).caSecret;
    const cached = caches.secrets.get(secretName, namespace);
    const certPem = secretText(cached, 'ca.crt');
    const keyPem = secretText(cached, 'ca.key');
    if (certPem && keyPem) return { certPem, keyPem };
    const ca = newGatewayCA(gw.metadata.name, now);
    try {
      await this.opts.client.create({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: secretName,
          namespace,
          labels: {
            [GATEWAY_LABEL]: gw.metadata.name,
            'app.kubernetes.io/managed-by': 'webgw',
            'app.kubernetes.io/name': 'webgw',
          },
          ownerReferences: [controllerReference({ kind: 'Gateway', name: gw.metadata.name, uid: gw.metadata.uid })],
        },
        type: 'Opaque',
        stringData: { 'ca.crt': ca.certPem, 'ca.key': ca.keyPem },
      } as KubernetesObject);
    } catch (err) {
      // Created meanwhile (our cache is behind): retry with the one that exists.
      if (statusCode(err) === 409)
        throw new WebgwError('WEBGW_ERR_KUBE', `CA Secret ${secretName} exists but is not in the cache yet`, {
          cause: err,
        });
      throw err;
    }
    this.opts.logger.info('created the gateway CA', {
      gateway: gw.metadata.name,
      secret: `${namespace}/${secretName}`,
    });
    await this.opts.events.emit(
      involved(gw),
      'Normal',
      'CreatedCA',
      `created the gateway CA in Secret ${namespace}/${secretName}`,
    );
    return ca;
  }

  /** One Event per condition whose status flipped (or appeared). */
  private async recordFlips(gw: Gateway, next: readonly Condition[]): Promise<void> {
    for (const c of next) {
      const before = gw.status?.conditions?.find((p) => p.type === c.type);
      if (before?.status === c.status) continue;
      await this.opts.events.emit(
        involved(gw),
        c.status === 'True' ? 'Normal' : 'Warning',
        c.reason,
        `${c.type}=${c.status}: ${c.message}`,
      );
    }
  }

  private async applyIfChanged(obj: GatewayObject): Promise<void> {
    const { name, namespace } = obj.metadata ?? {};
    const live = this.cacheFor(obj.kind ?? '')?.get(name ?? '', namespace);
    await applyIfChanged(this.opts.client, obj, appliedHashOf(live));
  }

  private cacheFor(kind: string): Watched<KubernetesObject> | undefined {
    const c = this.opts.caches;
    return (
      { ConfigMap: c.configMaps, Secret: c.secrets, DaemonSet: c.daemonSets, Deployment: c.deployments } as Record<
        string,
        Watched<KubernetesObject>
      >
    )[kind];
  }

  private async deleteOtherWorkload(
    gw: Gateway,
    ds: V1DaemonSet | undefined,
    deploy: V1Deployment | undefined,
  ): Promise<void> {
    const names = gatewayObjectNames(gw.metadata.name);
    const wantsDaemonSet = gw.spec.placement.replicas === undefined;
    const stale = wantsDaemonSet ? deploy : ds;
    if (stale)
      await this.opts.client.deleteWorkload(
        wantsDaemonSet ? 'Deployment' : 'DaemonSet',
        names.workload,
        this.opts.namespace,
      );
  }
}
