/**
 * Which ExposedService may serve what on which Gateway: a pure function over every Gateway and
 * ExposedService (docs/architecture.md, Trust model).
 *
 * - Gateways are resolved by name or selector; a Gateway's `allowedNamespaces` admits tenants.
 * - A hostname belongs on a gateway to the oldest ExposedService that claims it, whatever the
 *   protocol (creationTimestamp, then namespace/name): HTTP on a name and TLS passthrough of the
 *   same name serve the same visitors, so one tenant holds both. Later claimants get
 *   HostnameConflict and keep their other names.
 * - The Gateway's hostnamePolicy says which names may be claimed at all: under spec.domain a
 *   single label (`shop.<domain>`), never the domain itself or a wildcard over it; wildcards
 *   elsewhere and names outside the domain only where the farmer allows them.
 * - Per namespace and gateway: at most maxServicesPerNamespace ExposedServices are served and
 *   maxTcpPortsPerNamespace TCP ports held (oldest first), so one tenant cannot take a shared
 *   gateway's ports or fill its admission list.
 * - With `hostnamePolicy.external: Verified` (the default), a name outside the domain needs proof
 *   of control (a DNS TXT record, trust/verification.ts) from the claimant's namespace, unless the
 *   farmer lists that namespace in `trustedNamespaces`.
 * - A name reserved for a namespace (its holder's, kept by the controller for a while after the
 *   holder goes: trust/reservations.ts) can be claimed only from that namespace, so re-creating
 *   an ExposedService does not hand its names to someone else.
 * - TCP routes get a port from the gateway's range. A port already recorded in the service's
 *   status is kept (stable across controller restarts); new routes take the lowest free port.
 *
 * The result feeds the credential (the grants are exactly what was accepted) and the status.
 */
import {
  gatewayLimitDefaults,
  hostnamePolicyDefaults,
  type ExposedService,
  type ExposedServiceRoute,
  type Gateway,
  type LabelSelector,
} from '../../crds/types.ts';
import { gatewayServesHttps } from '../gateway/served-certificate.ts';
import { challengeRecord, verificationValue } from '../trust/verification.ts';

export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
  /** Proof of control of a hostname is tied to the namespace's uid (trust/verification.ts). */
  uid?: string;
}

export interface PlanOptions {
  /** Per gateway, hostname → the namespace it is reserved for (trust/reservations.ts). */
  reserved?: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** Whether a namespace (by uid) has proven control of a hostname (trust/verification.ts). */
  verified?: (hostname: string, namespaceUid: string) => boolean;
  /** Per gateway, TCP port → its holder `namespace/name#routeIndex` (trust/reservations.ts). */
  reservedPorts?: ReadonlyMap<string, ReadonlyMap<number, string>>;
}

/** Who holds a TCP port: one route of one ExposedService. */
export function portHolder(serviceKeyText: string, routeIndex: number): string {
  return `${serviceKeyText}#${routeIndex}`;
}

export interface TcpAllocation {
  /** Index of the route in spec.routes. */
  route: number;
  port: number;
  backendPort: number;
}

export interface GatewayPlan {
  gateway: string;
  /** False when the gateway does not admit the namespace or cannot serve anything asked. */
  accepted: boolean;
  reason?: 'NamespaceNotAllowed' | 'PortsExhausted' | 'NamespaceQuotaExceeded';
  message?: string;
  /** HTTP routes' names served as plain HTTP. */
  http: string[];
  /** HTTP routes' names the gateway terminates HTTPS for (its certificate covers them). */
  https: string[];
  /** TLS routes' names passed through. */
  tls: string[];
  /** TLS routes' names with termination: Terminate, which the gateway's certificate covers. */
  tlsTerminated: string[];
  /**
   * TLS routes' names with termination: Terminate on a Gateway with spec.acme, held by this
   * service while their certificate is ordered: not served yet (no grant), then tlsTerminated.
   */
  awaitingCertificate: string[];
  tcp: TcpAllocation[];
  /** HTTP routes' names (among http and https) whose backend speaks HTTP/2 cleartext (backendProtocol: H2C). */
  h2c: string[];
  /** Names held by another ExposedService on this gateway. */
  conflicts: Array<{ protocol: 'HTTP' | 'TLS'; hostname: string; holder: string }>;
  /** Names the gateway's hostnamePolicy does not let anyone claim, and why. */
  refused: Array<{ hostname: string; why: string }>;
}

/** Every hostname the plan serves on its gateway, however it is served. */
export function planHostnames(gp: Pick<GatewayPlan, 'http' | 'https' | 'tls' | 'tlsTerminated'>): string[] {
  return [...new Set([...gp.http, ...gp.https, ...gp.tls, ...gp.tlsTerminated])];
}

/**
 * The lists a claimed name goes in. HTTP: HTTPS where the gateway's certificate covers the name
 * and it has an https listener, plain HTTP too unless the route redirects (the default); plain
 * HTTP only elsewhere. TLS: passthrough, or terminated (terminationRefusal checked it can be).
 */
function servedAs(gp: GatewayPlan, route: ExposedServiceRoute, hostname: string, g: Gateway): string[][] {
  if (route.protocol === 'TLS' && route.termination !== 'Terminate') return [gp.tls];
  if (route.protocol === 'TLS')
    return [gatewayServesHttps(g.status, hostname) ? gp.tlsTerminated : gp.awaitingCertificate];
  if (!g.spec.listeners.https || !gatewayServesHttps(g.status, hostname)) return [gp.http];
  return route.redirect === false && g.spec.listeners.http ? [gp.https, gp.http] : [gp.https];
}

/**
 * A TLS route to terminate needs the gateway's certificate for the name, or a Gateway that can
 * order one (spec.acme, an HTTP listener to answer HTTP-01 on, a name that is not a wildcard).
 * One the agents terminate needs spec.acme and the https listener TLS-ALPN-01 validates on.
 */
function terminationRefusal(route: ExposedServiceRoute, hostname: string, g: Gateway): string | undefined {
  if (route.protocol === 'TLS' && route.termination === 'Agent') {
    if (g.spec.acme && g.spec.listeners.https && !hostname.startsWith('*.')) return undefined;
    return `Gateway ${g.metadata.name} cannot order the agents' certificate for ${hostname} (termination: Agent needs spec.acme and an https listener, where TLS-ALPN-01 is validated, and a name that is not a wildcard)`;
  }
  if (route.protocol !== 'TLS' || route.termination !== 'Terminate' || gatewayServesHttps(g.status, hostname))
    return undefined;
  if (g.spec.acme && g.spec.listeners.http && !hostname.startsWith('*.')) return undefined;
  return `Gateway ${g.metadata.name} has no certificate for ${hostname} (termination: Terminate needs a name its spec.tls certificate covers, or spec.acme for a name that is not a wildcard)`;
}

export interface ServicePlan {
  key: string;
  /** Named gateways that do not exist. */
  missingGateways: string[];
  gateways: GatewayPlan[];
}

/** Namespaces as the plan needs them, from the cache. */
export function namespaceInfos(
  namespaces: ReadonlyArray<{ metadata?: { name?: string; labels?: Record<string, string>; uid?: string } }>,
): NamespaceInfo[] {
  return namespaces.map((n) => ({
    name: n.metadata?.name ?? '',
    labels: n.metadata?.labels ?? {},
    ...(n.metadata?.uid ? { uid: n.metadata.uid } : {}),
  }));
}

export function serviceKey(s: ExposedService): string {
  return `${s.metadata.namespace}/${s.metadata.name}`;
}

export function selectorMatches(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    const values = e.values ?? [];
    const ok =
      e.operator === 'In'
        ? has && values.includes(value as string)
        : e.operator === 'NotIn'
          ? !has || !values.includes(value as string)
          : e.operator === 'Exists'
            ? has
            : !has;
    if (!ok) return false;
  }
  return true;
}

/**
 * A copy of `services`, oldest first (creationTimestamp); ties broken by namespace/name so every
 * run decides the same way. Each key is built once: a comparator that built them per comparison
 * was a tenth of a claims plan at 5,000 services.
 */
export function oldestFirst<S extends ExposedService>(services: readonly S[]): S[] {
  const keyed = services.map((s) => ({ s, t: s.metadata.creationTimestamp ?? '', k: serviceKey(s) }));
  keyed.sort((a, b) => (a.t !== b.t ? (a.t < b.t ? -1 : 1) : a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  return keyed.map((e) => e.s);
}

export function resolveGateways(
  service: ExposedService,
  gateways: readonly Gateway[],
  byName: ReadonlyMap<string, Gateway> = new Map(gateways.map((g) => [g.metadata.name, g])),
): { found: Gateway[]; missing: string[] } {
  if (service.spec.gateways) {
    const found: Gateway[] = [];
    const missing: string[] = [];
    for (const ref of service.spec.gateways) {
      const g = byName.get(ref.name);
      if (g) found.push(g);
      else missing.push(ref.name);
    }
    return { found, missing };
  }
  return {
    found: gateways.filter((g) => selectorMatches(service.spec.gatewaySelector, g.metadata.labels ?? {})),
    missing: [],
  };
}

/** The hostnames a route asks for on one gateway (its own names, plus subdomain.domain). */
export function routeHostnames(route: ExposedService['spec']['routes'][number], gateway: Gateway): string[] {
  const names = [...(route.hostnames ?? [])];
  if (route.subdomain && gateway.spec.domain) names.push(`${route.subdomain}.${gateway.spec.domain}`);
  return names.map((n) => n.toLowerCase());
}

type HostnamePolicy = NonNullable<Gateway['spec']['hostnamePolicy']>;
const policies = new WeakMap<Gateway, Required<Pick<HostnamePolicy, 'wildcards' | 'external'>>>();

/** A Gateway's hostname policy with its defaults, once per Gateway object (planClaims asks per name). */
function policyOf(gateway: Gateway): Required<Pick<HostnamePolicy, 'wildcards' | 'external'>> {
  let policy = policies.get(gateway);
  if (!policy) {
    policy = {
      wildcards: gateway.spec.hostnamePolicy?.wildcards ?? hostnamePolicyDefaults.wildcards,
      external: gateway.spec.hostnamePolicy?.external ?? hostnamePolicyDefaults.external,
    };
    policies.set(gateway, policy);
  }
  return policy;
}

/** Why `hostname` may not be claimed on `gateway`, or undefined when it may. */
export function hostnameRefusal(hostname: string, gateway: Gateway): string | undefined {
  const domain = gateway.spec.domain?.toLowerCase();
  const wildcard = hostname.startsWith('*.');
  const base = wildcard ? hostname.slice(2) : hostname;
  if (domain) {
    if (base === domain || domain.endsWith(`.${base}`))
      return wildcard
        ? `a wildcard over the gateway domain ${domain} is not allowed`
        : `the gateway domain ${domain} itself is not served to tenants`;
    if (base.endsWith(`.${domain}`)) {
      if (wildcard) return `wildcards under the gateway domain ${domain} are not allowed`;
      if (base.slice(0, -domain.length - 1).includes('.'))
        return `names under the gateway domain ${domain} are single labels (<name>.${domain})`;
      return undefined;
    }
  }
  const policy = policyOf(gateway);
  if (wildcard && policy.wildcards !== 'Allowed') return 'wildcard hostnames are not allowed on this Gateway';
  if (policy.external === 'Forbidden')
    return domain
      ? `only names under ${domain} are served on this Gateway`
      : 'this Gateway serves no hostnames outside its domain';
  return undefined;
}

/**
 * True when claiming `hostname` on `gateway` from a namespace with these labels needs proof of
 * control: a name outside its domain, `external: Verified` (the default), and the namespace
 * not among the farmer's `trustedNamespaces`.
 */
export function needsProof(hostname: string, gateway: Gateway, namespaceLabels: Record<string, string>): boolean {
  const policy = policyOf(gateway);
  if (policy.external !== 'Verified') return false;
  const trusted = gateway.spec.hostnamePolicy?.trustedNamespaces?.selector;
  if (trusted && selectorMatches(trusted, namespaceLabels)) return false;
  const domain = gateway.spec.domain?.toLowerCase();
  const base = hostname.startsWith('*.') ? hostname.slice(2) : hostname;
  return !domain || !base.endsWith(`.${domain}`);
}

/**
 * `options.reserved`: a reserved name may be claimed only from its namespace, however old
 * another claimant is. `options.verified`: on gateways that ask for proof, an external name may be
 * claimed only by a namespace that proved control of it.
 */
export function planClaims(
  gateways: readonly Gateway[],
  services: readonly ExposedService[],
  namespaces: readonly NamespaceInfo[],
  options: PlanOptions = {},
): Map<string, ServicePlan> {
  const { reserved, verified } = options;
  const nsLabels = new Map(namespaces.map((n) => [n.name, n.labels]));
  const nsUid = new Map(namespaces.map((n) => [n.name, n.uid ?? '']));
  const ordered = oldestFirst(services);
  const plans = new Map<string, ServicePlan>();
  /** Per gateway: hostname → holder key; used TCP ports; per namespace, services served and ports held. */
  const holders = new Map<string, Map<string, string>>();
  const usedPorts = new Map<string, Set<number>>();
  const servicesOf = new Map<string, Map<string, number>>();
  const portsOf = new Map<string, Map<string, number>>();
  for (const g of gateways) {
    holders.set(g.metadata.name, new Map());
    usedPorts.set(g.metadata.name, new Set());
    servicesOf.set(g.metadata.name, new Map());
    portsOf.set(g.metadata.name, new Map());
  }
  const bump = (counts: Map<string, Map<string, number>>, gateway: string, namespace: string): number => {
    const perNamespace = counts.get(gateway) as Map<string, number>;
    const n = (perNamespace.get(namespace) ?? 0) + 1;
    perNamespace.set(namespace, n);
    return n;
  };

  const kept = keptPorts(gateways, ordered, usedPorts, options.reservedPorts);
  const byName = new Map(gateways.map((g) => [g.metadata.name, g]));
  /** Per gateway, no free port below this one (ports are only taken while planning, but for a quota). */
  const freeFrom = new Map<string, number>();

  for (const s of ordered) {
    const key = serviceKey(s);
    const { found, missing } = resolveGateways(s, gateways, byName);
    const plan: ServicePlan = { key, missingGateways: missing, gateways: [] };
    for (const g of found) {
      const gp: GatewayPlan = {
        gateway: g.metadata.name,
        accepted: true,
        http: [],
        https: [],
        tls: [],
        tlsTerminated: [],
        awaitingCertificate: [],
        tcp: [],
        h2c: [],
        conflicts: [],
        refused: [],
      };
      plan.gateways.push(gp);
      const namespace = s.metadata.namespace ?? '';
      if (!selectorMatches(g.spec.allowedNamespaces?.selector, nsLabels.get(namespace) ?? {})) {
        Object.assign(gp, {
          accepted: false,
          reason: 'NamespaceNotAllowed',
          message: `Gateway ${g.metadata.name} does not admit namespace ${s.metadata.namespace}`,
        });
        continue;
      }
      const maxServices = g.spec.limits?.maxServicesPerNamespace ?? gatewayLimitDefaults.maxServicesPerNamespace;
      if (bump(servicesOf, g.metadata.name, namespace) > maxServices) {
        Object.assign(gp, {
          accepted: false,
          reason: 'NamespaceQuotaExceeded',
          message: `Gateway ${g.metadata.name} serves at most ${maxServices} ExposedServices of namespace ${namespace} (limits.maxServicesPerNamespace)`,
        });
        continue;
      }
      const maxPorts = g.spec.limits?.maxTcpPortsPerNamespace ?? gatewayLimitDefaults.maxTcpPortsPerNamespace;
      const claims = holders.get(g.metadata.name) as Map<string, string>;
      const used = usedPorts.get(g.metadata.name) as Set<number>;
      s.spec.routes.forEach((route, index) => {
        if (route.protocol === 'TCP') {
          const range = g.spec.listeners.tcp?.portRange;
          const backendPort = route.backend?.port ?? s.spec.backend.port;
          if (!range) {
            Object.assign(gp, { reason: 'PortsExhausted', message: `Gateway ${g.metadata.name} has no tcp listener` });
            return;
          }
          let port = kept.get(key)?.get(`${g.metadata.name} ${index}`);
          if (bump(portsOf, g.metadata.name, namespace) > maxPorts) {
            // A port kept from before goes back to the pool: the quota is the farmer's word now.
            if (port !== undefined) {
              used.delete(port);
              freeFrom.set(g.metadata.name, Math.min(freeFrom.get(g.metadata.name) ?? range.from, port));
            }
            Object.assign(gp, {
              reason: 'NamespaceQuotaExceeded',
              message: `namespace ${namespace} holds the most TCP ports allowed on Gateway ${g.metadata.name} (${maxPorts}, limits.maxTcpPortsPerNamespace)`,
            });
            return;
          }
          if (port === undefined) {
            const reservedHere = options.reservedPorts?.get(g.metadata.name);
            let p = Math.max(range.from, freeFrom.get(g.metadata.name) ?? range.from);
            // A port reserved for another route stays free for it (its service may come back).
            while (p <= range.to && (used.has(p) || reservedHere?.has(p))) p++;
            freeFrom.set(g.metadata.name, p);
            if (p <= range.to) port = p;
          }
          if (port === undefined) {
            Object.assign(gp, {
              reason: 'PortsExhausted',
              message: `no free port left in ${range.from}-${range.to} on Gateway ${g.metadata.name}`,
            });
            return;
          }
          used.add(port);
          gp.tcp.push({ route: index, port, backendPort });
          return;
        }
        for (const hostname of routeHostnames(route, g)) {
          const why = hostnameRefusal(hostname, g) ?? terminationRefusal(route, hostname, g);
          if (why) {
            if (!gp.refused.some((r) => r.hostname === hostname)) gp.refused.push({ hostname, why });
            continue;
          }
          const uid = nsUid.get(namespace) ?? '';
          if (needsProof(hostname, g, nsLabels.get(namespace) ?? {}) && !(uid && verified?.(hostname, uid))) {
            if (!gp.refused.some((r) => r.hostname === hostname))
              gp.refused.push({
                hostname,
                why: `not proven yet: publish the TXT record ${challengeRecord(hostname)} with the value "${verificationValue(uid)}"`,
              });
            continue;
          }
          const holder = claims.get(hostname);
          if (holder && holder !== key) {
            gp.conflicts.push({ protocol: route.protocol, hostname, holder });
            continue;
          }
          const reservedFor = reserved?.get(g.metadata.name)?.get(hostname);
          if (reservedFor !== undefined && reservedFor !== namespace) {
            gp.conflicts.push({ protocol: route.protocol, hostname, holder: `namespace ${reservedFor} (reserved)` });
            continue;
          }
          claims.set(hostname, key);
          for (const list of servedAs(gp, route, hostname, g)) if (!list.includes(hostname)) list.push(hostname);
          if (route.protocol === 'HTTP' && route.backendProtocol === 'H2C' && !gp.h2c.includes(hostname))
            gp.h2c.push(hostname);
        }
      });
      if (planHostnames(gp).length + gp.tcp.length === 0 && gp.accepted && gp.reason) gp.accepted = false;
    }
    plans.set(key, plan);
  }
  // A reserved name refused to an older claimant is held, by now, by a younger service of the
  // reserved namespace: name that holder.
  for (const plan of plans.values()) {
    for (const gp of plan.gateways) {
      for (const c of gp.conflicts) c.holder = holders.get(gp.gateway)?.get(c.hostname) ?? c.holder;
    }
  }
  return plans;
}

/**
 * Ports kept from before: first what the controller's reservations record (its own state), then,
 * for routes it has no record of (objects from before reservations existed), what the service's
 * status says, if no one else holds or reserved that port. Marks them used; returns, per service
 * key, `${gateway} ${route}` → port.
 */
function keptPorts(
  gateways: readonly Gateway[],
  ordered: readonly ExposedService[],
  usedPorts: Map<string, Set<number>>,
  reservedPorts: PlanOptions['reservedPorts'],
): Map<string, Map<string, number>> {
  const kept = new Map<string, Map<string, number>>(ordered.map((s) => [serviceKey(s), new Map<string, number>()]));
  const byKey = new Map(ordered.map((s) => [serviceKey(s), s]));
  for (const g of gateways) {
    const range = g.spec.listeners.tcp?.portRange;
    const used = usedPorts.get(g.metadata.name) as Set<number>;
    for (const [port, holder] of reservedPorts?.get(g.metadata.name) ?? []) {
      const at = holder.lastIndexOf('#');
      const service = byKey.get(holder.slice(0, at));
      const index = Number(holder.slice(at + 1));
      if (
        !range ||
        !service ||
        service.spec.routes[index]?.protocol !== 'TCP' ||
        port < range.from ||
        port > range.to ||
        used.has(port)
      )
        continue;
      used.add(port);
      kept.get(holder.slice(0, at))!.set(`${g.metadata.name} ${index}`, port);
    }
  }
  for (const s of ordered) {
    const mine = kept.get(serviceKey(s)) as Map<string, number>;
    for (const ep of s.status?.endpoints ?? []) {
      const g = gateways.find((x) => x.metadata.name === ep.gateway);
      const range = g?.spec.listeners.tcp?.portRange;
      if (!g || !range) continue;
      const used = usedPorts.get(g.metadata.name) as Set<number>;
      const reserved = reservedPorts?.get(g.metadata.name);
      for (const alloc of ep.tcp ?? []) {
        // The route a recorded port belongs to: the first TCP route with that backend port
        // that has no port yet.
        const index = s.spec.routes.findIndex(
          (r, i) =>
            r.protocol === 'TCP' &&
            (r.backend?.port ?? s.spec.backend.port) === alloc.backendPort &&
            !mine.has(`${g.metadata.name} ${i}`),
        );
        if (
          index < 0 ||
          alloc.port < range.from ||
          alloc.port > range.to ||
          used.has(alloc.port) ||
          reserved?.has(alloc.port)
        )
          continue;
        used.add(alloc.port);
        mine.set(`${g.metadata.name} ${index}`, alloc.port);
      }
    }
  }
  return kept;
}
