/**
 * Hostname reservations: which namespace a hostname belongs to on a gateway, kept in the
 * controller's own state (a ConfigMap per Gateway in the controller's namespace, which tenants
 * cannot write). Without it, a name would pass to the next claimant the moment its holder
 * re-creates its ExposedService (a GitOps replace, a rename): the oldest claim would then be
 * someone else's (issue 12). A reservation lasts while the namespace claims the name, and for
 * RELEASE_AFTER_MS after its last claim went; only then may another namespace take it.
 */
import type { ServicePlan } from '../exposedservice/claims.ts';

export const RELEASE_AFTER_MS = 60 * 60_000;
export const RESERVATIONS_KEY = 'reservations.txt';

export interface Reservation {
  namespace: string;
  /** When its namespace stopped claiming it (ISO time); absent while claimed. */
  releasedAt?: string;
}

/** hostname → reservation, for one gateway. */
export type Reservations = ReadonlyMap<string, Reservation>;

export function reservationsName(gateway: string): string {
  return `webgw-gw-${gateway}-reservations`;
}

/** Lines `hostname namespace [releasedAt]`; lines that do not parse are dropped. */
export function parseReservations(text: string | undefined): Map<string, Reservation> {
  const out = new Map<string, Reservation>();
  for (const line of (text ?? '').split('\n')) {
    const [hostname, namespace, releasedAt, extra] = line.trim().split(/\s+/);
    if (!hostname || !namespace || hostname.startsWith('#') || extra !== undefined) continue;
    out.set(hostname, { namespace, ...(releasedAt ? { releasedAt } : {}) });
  }
  return out;
}

export function renderReservations(reservations: Reservations): string {
  const lines = [...reservations].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([h, r]) => `${h} ${r.namespace}${r.releasedAt ? ` ${r.releasedAt}` : ''}\n`);
  return `# hostname namespace [released-at]: who holds each name on this gateway (webgw controller).\n${lines.join('')}`;
}

/**
 * The reservations after a plan: every name the plan grants is reserved for its holder's
 * namespace; a reservation whose namespace no longer claims it is kept, marked released, until
 * RELEASE_AFTER_MS have passed. Returns when the next one expires (to look again then).
 */
export function nextReservations(gateway: string, previous: Reservations, plans: ReadonlyMap<string, ServicePlan>, now: Date): { reservations: Map<string, Reservation>; nextExpiry: Date | undefined } {
  const held = new Map<string, string>();
  for (const plan of plans.values()) {
    const namespace = plan.key.split('/')[0] as string;
    for (const gp of plan.gateways) {
      if (gp.gateway !== gateway || !gp.accepted) continue;
      for (const hostname of [...gp.http, ...gp.tls]) held.set(hostname, namespace);
    }
  }
  const reservations = new Map<string, Reservation>();
  let nextExpiry: number | undefined;
  for (const [hostname, namespace] of held) reservations.set(hostname, { namespace });
  for (const [hostname, r] of previous) {
    if (held.has(hostname)) continue;
    const releasedAt = r.releasedAt ?? now.toISOString();
    const expires = Date.parse(releasedAt) + RELEASE_AFTER_MS;
    if (!(expires > now.getTime())) continue; // expired (or unreadable): the name is free
    reservations.set(hostname, { namespace: r.namespace, releasedAt });
    nextExpiry = Math.min(nextExpiry ?? Infinity, expires);
  }
  return { reservations, nextExpiry: nextExpiry === undefined ? undefined : new Date(nextExpiry) };
}

/** For planClaims: per gateway, hostname → the namespace it is reserved for. */
export function reservedNamespaces(byGateway: ReadonlyMap<string, Reservations>): Map<string, Map<string, string>> {
  return new Map([...byGateway].map(([g, r]) => [g, new Map([...r].map(([h, x]) => [h, x.namespace]))]));
}


/** Every gateway's reservations, from the ConfigMaps the controller keeps (`get` reads its cache). */
export function readReservations(gateways: readonly string[], get: (configMapName: string) => { data?: Record<string, string> } | undefined): Map<string, Reservations> {
  return new Map(gateways.map((g) => [g, parseReservations(get(reservationsName(g))?.data?.[RESERVATIONS_KEY])]));
}
