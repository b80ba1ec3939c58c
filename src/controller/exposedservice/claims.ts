/**
 * Which ExposedService may serve what on which Gateway: a pure function over every Gateway and
 * ExposedService (design: Trust model).
 *
 * - Gateways are resolved by name or selector; a Gateway's `allowedNamespaces` admits tenants.
 * - A hostname (per protocol) belongs on a gateway to the oldest ExposedService that claims it
 *   (creationTimestamp, then namespace/name); later claimants get HostnameConflict and keep
 *   their other names.
 * - TCP routes get a port from the gateway's range. A port already recorded in the service's
 *   status is kept (stable across controller restarts); new routes take the lowest free port.
 *
 * The result feeds the credential (the grants are exactly what was accepted) and the status.
 */
import type { ExposedService, Gateway, LabelSelector } from '../../crds/types.ts';

export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
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
  reason?: 'NamespaceNotAllowed' | 'PortsExhausted';
  message?: string;
  http: string[];
  tls: string[];
  tcp: TcpAllocation[];
  /** Names held by another ExposedService on this gateway. */
  conflicts: Array<{ protocol: 'HTTP' | 'TLS'; hostname: string; holder: string }>;
}

export interface ServicePlan {
  key: string;
  /** Named gateways that do not exist. */
  missingGateways: string[];
  gateways: GatewayPlan[];
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
    const ok = e.operator === 'In' ? has && values.includes(value as string)
      : e.operator === 'NotIn' ? !has || !values.includes(value as string)
        : e.operator === 'Exists' ? has : !has;
    if (!ok) return false;
  }
  return true;
}

/** Oldest first; ties broken by namespace/name so every run decides the same way. */
function byAge(a: ExposedService, b: ExposedService): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  return serviceKey(a) < serviceKey(b) ? -1 : serviceKey(a) > serviceKey(b) ? 1 : 0;
}

export function resolveGateways(service: ExposedService, gateways: readonly Gateway[]): { found: Gateway[]; missing: string[] } {
  if (service.spec.gateways) {
    const byName = new Map(gateways.map((g) => [g.metadata.name, g]));
    const found: Gateway[] = [];
    const missing: string[] = [];
    for (const ref of service.spec.gateways) {
      const g = byName.get(ref.name);
      if (g) found.push(g);
      else missing.push(ref.name);
    }
    return { found, missing };
  }
  return { found: gateways.filter((g) => selectorMatches(service.spec.gatewaySelector, g.metadata.labels ?? {})), missing: [] };
}

/** The hostnames a route asks for on one gateway (its own names, plus subdomain.domain). */
export function routeHostnames(route: ExposedService['spec']['routes'][number], gateway: Gateway): string[] {
  const names = [...(route.hostnames ?? [])];
  if (route.subdomain && gateway.spec.domain) names.push(`${route.subdomain}.${gateway.spec.domain}`);
  return names.map((n) => n.toLowerCase());
}

export function planClaims(gateways: readonly Gateway[], services: readonly ExposedService[], namespaces: readonly NamespaceInfo[]): Map<string, ServicePlan> {
  const nsLabels = new Map(namespaces.map((n) => [n.name, n.labels]));
  const ordered = [...services].sort(byAge);
  const plans = new Map<string, ServicePlan>();
  /** Per gateway: `${protocol} ${hostname}` → holder key; used TCP ports. */
  const holders = new Map<string, Map<string, string>>();
  const usedPorts = new Map<string, Set<number>>();
  for (const g of gateways) {
    holders.set(g.metadata.name, new Map());
    usedPorts.set(g.metadata.name, new Set());
  }

  // First pass: ports already recorded in status are kept, oldest service first.
  const kept = new Map<string, Map<string, number>>(); // service key → `${gateway} ${route}` → port
  for (const s of ordered) {
    const mine = new Map<string, number>();
    for (const ep of s.status?.endpoints ?? []) {
      const g = gateways.find((x) => x.metadata.name === ep.gateway);
      const range = g?.spec.listeners.tcp?.portRange;
      if (!g || !range) continue;
      const used = usedPorts.get(g.metadata.name) as Set<number>;
      for (const alloc of ep.tcp ?? []) {
        // The route a recorded port belongs to: the first TCP route with that backend port
        // that has no port yet.
        const index = s.spec.routes.findIndex((r, i) => r.protocol === 'TCP' && (r.backend?.port ?? s.spec.backend.port) === alloc.backendPort && !mine.has(`${g.metadata.name} ${i}`));
        if (index < 0 || alloc.port < range.from || alloc.port > range.to || used.has(alloc.port)) continue;
        used.add(alloc.port);
        mine.set(`${g.metadata.name} ${index}`, alloc.port);
      }
    }
    kept.set(serviceKey(s), mine);
  }

  for (const s of ordered) {
    const key = serviceKey(s);
    const { found, missing } = resolveGateways(s, gateways);
    const plan: ServicePlan = { key, missingGateways: missing, gateways: [] };
    for (const g of found) {
      const gp: GatewayPlan = { gateway: g.metadata.name, accepted: true, http: [], tls: [], tcp: [], conflicts: [] };
      plan.gateways.push(gp);
      if (!selectorMatches(g.spec.allowedNamespaces?.selector, nsLabels.get(s.metadata.namespace ?? '') ?? {})) {
        Object.assign(gp, { accepted: false, reason: 'NamespaceNotAllowed', message: `Gateway ${g.metadata.name} does not admit namespace ${s.metadata.namespace}` });
        continue;
      }
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
          if (port === undefined) {
            for (let p = range.from; p <= range.to; p++) {
              if (!used.has(p)) {
                port = p;
                break;
              }
            }
          }
          if (port === undefined) {
            Object.assign(gp, { reason: 'PortsExhausted', message: `no free port left in ${range.from}-${range.to} on Gateway ${g.metadata.name}` });
            return;
          }
          used.add(port);
          gp.tcp.push({ route: index, port, backendPort });
          return;
        }
        for (const hostname of routeHostnames(route, g)) {
          const claimKey = `${route.protocol} ${hostname}`;
          const holder = claims.get(claimKey);
          if (holder && holder !== key) {
            gp.conflicts.push({ protocol: route.protocol, hostname, holder });
            continue;
          }
          claims.set(claimKey, key);
          const list = route.protocol === 'HTTP' ? gp.http : gp.tls;
          if (!list.includes(hostname)) list.push(hostname);
        }
      });
      if (gp.http.length + gp.tls.length + gp.tcp.length === 0 && gp.accepted && gp.reason) gp.accepted = false;
    }
    plans.set(key, plan);
  }
  return plans;
}
