/**
 * The claims plan over every Gateway and ExposedService (claims.ts), computed once per change of
 * what it is computed from, and shared by both reconcilers. Claims are global (first come per
 * hostname and gateway), so every reconcile needs the whole plan; computing it afresh in each
 * made a burst of N services cost N² (issue 15).
 */
import type { KubernetesObject, V1Namespace } from '@kubernetes/client-node';
import type { Clock } from '../../common/clock.ts';
import type { ExposedService, Gateway } from '../../crds/types.ts';
import { canonicalJson } from '../runtime/apply.ts';
import type { Watched } from '../runtime/informer.ts';
import { planReservations, readReservations, type Reservations } from '../trust/reservations.ts';
import type { HostnameVerifier } from '../trust/verification.ts';
import { namespaceInfos, planClaims, type ServicePlan } from './claims.ts';

export interface PlanInputs {
  services: Watched<ExposedService & KubernetesObject>;
  gateways: Watched<Gateway & KubernetesObject>;
  namespaces: Watched<V1Namespace>;
  /** The controller's ConfigMaps (hostname reservations per gateway). */
  configMaps: Watched<KubernetesObject>;
  namespace: string;
  verifier?: HostnameVerifier;
}

export interface ClaimsView {
  plans: ReadonlyMap<string, ServicePlan>;
  /** Each gateway's hostname reservations as recorded. */
  reserved: ReadonlyMap<string, Reservations>;
}

export class SharedPlan {
  private readonly inputs: PlanInputs;
  private readonly clock: Clock;
  private version = 0;
  private cached: { version: number; at: number; view: ClaimsView } | undefined;
  /** How long the last computation took (on the event loop). */
  private lastComputeMs = 0;
  /** Each service's plan as of the last changedPlans(), serialized. */
  private seen = new Map<string, string>();

  constructor(inputs: PlanInputs, clock: Clock) {
    this.inputs = inputs;
    this.clock = clock;
  }

  /**
   * How stale a plan a reconcile that can look again may take: `floorMs`, or ten times what the
   * last computation took, so that planning stays near a tenth of the event loop however many
   * services there are (5,000: ~70 ms a plan).
   */
  staleBudgetMs(floorMs: number): number {
    return Math.max(floorMs, 10 * this.lastComputeMs);
  }

  /** Something the plan is computed from changed (a watch event, a proof verdict). */
  invalidate(): void {
    this.version += 1;
  }

  /**
   * The plan as of now; or, with `maxStaleMs`, one computed at most that long ago that has
   * `needs` in it (`stale` then says so: the caller looks again soon). During a burst of changes
   * a plan over 5,000 services (~70 ms) is so computed a few times a second, not once per
   * reconcile. A stale answer is a whole plan of a moment ago, never a mix of two; whoever takes
   * one looks again within maxStaleMs.
   */
  get(options: { maxStaleMs?: number; needs?: string } = {}): ClaimsView & { stale: boolean } {
    const c = this.cached;
    if (c?.version === this.version) return { ...c.view, stale: false };
    if (
      c &&
      options.maxStaleMs !== undefined &&
      this.clock.now() - c.at <= options.maxStaleMs &&
      (options.needs === undefined || c.view.plans.has(options.needs))
    ) {
      return { ...c.view, stale: true };
    }
    const started = this.clock.now();
    const { services, gateways, namespaces, configMaps, namespace, verifier } = this.inputs;
    const gatewayList = gateways.list();
    const reserved = readReservations(
      gatewayList.map((g) => g.metadata.name),
      (n) => configMaps.get(n, namespace) as { data?: Record<string, string> } | undefined,
    );
    const plans = planClaims(gatewayList, services.list(), namespaceInfos(namespaces.list()), {
      ...planReservations(reserved),
      verified: verifier?.verified.bind(verifier),
    });
    const view = { plans, reserved };
    const at = this.clock.now();
    this.lastComputeMs = at - started;
    this.cached = { version: this.version, at, view };
    return { ...view, stale: false };
  }

  /**
   * The services whose plan is not what it was at the last call (new, changed or gone): after a
   * change of the inputs only these need a reconcile, not every service (a burst of N creations
   * swept all N services N times, issue 15).
   */
  changedPlans(): string[] {
    const now = new Map([...this.get().plans].map(([key, plan]) => [key, JSON.stringify(plan)]));
    const changed = [...now].filter(([key, text]) => this.seen.get(key) !== text).map(([key]) => key);
    for (const key of this.seen.keys()) if (!now.has(key)) changed.push(key);
    this.seen = now;
    return changed;
  }
}

/**
 * What the claims plan reads of an ExposedService (claims.ts): its identity and age, its spec,
 * and the TCP ports its status recorded (kept for objects older than the reservations).
 */
export function planFingerprint(s: ExposedService): string {
  const { uid, creationTimestamp, generation } = s.metadata;
  const deleting = (s.metadata as { deletionTimestamp?: unknown }).deletionTimestamp !== undefined;
  return canonicalJson({
    uid,
    creationTimestamp,
    generation,
    deleting,
    spec: s.spec,
    tcp: (s.status?.endpoints ?? []).map((e) => [e.gateway, e.tcp ?? []]),
  });
}

/** What services read of a Gateway: its spec and labels (the plan), its endpoints and addresses (their config and status). */
export function gatewayFingerprint(gw: Gateway): string {
  // The served certificate decides which names get HTTPS grants (claims.ts servedAs).
  const certificateReady = gw.status?.conditions?.find((c) => c.type === 'CertificateReady')?.status;
  return canonicalJson({
    uid: gw.metadata.uid,
    generation: gw.metadata.generation,
    labels: gw.metadata.labels ?? {},
    spec: gw.spec,
    endpoints: gw.status?.tunnelEndpoints ?? [],
    addresses: gw.status?.addresses ?? [],
    certificate: gw.status?.certificate ?? null,
    certificateReady: certificateReady ?? null,
    // ACME certificates move names to HTTPS grants; failures are shown on the services.
    acme: gw.status?.acme ?? null,
  });
}
