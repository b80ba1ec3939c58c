/**
 * Reservations: which namespace a hostname belongs to on a gateway, and which route of which
 * ExposedService a TCP port belongs to, kept in the controller's own state (a ConfigMap per
 * Gateway in the controller's namespace, which tenants cannot write). Without it, a name would
 * pass to the next claimant the moment its holder re-creates its ExposedService (a GitOps
 * replace): the oldest claim would then be someone else's (issue 12); and ports would be
 * remembered only in the ExposedService's status, which a tenant may be able to write. A
 * reservation lasts while it is held, and for RELEASE_AFTER_MS after that; only then may
 * someone else take it.
 */
import { planHostnames, portHolder, type ServicePlan } from '../exposedservice/claims.ts';

export const RELEASE_AFTER_MS = 60 * 60_000;
export const RESERVATIONS_KEY = 'reservations.txt';

export interface Reservation {
  namespace: string;
  /** For a TCP port (key `tcp/<port>`): the route holding it, `namespace/name#routeIndex`. */
  holder?: string;
  /** When its namespace stopped claiming it (ISO time); absent while claimed. */
  releasedAt?: string;
}

/** hostname or `tcp/<port>` → reservation, for one gateway. */
export type Reservations = ReadonlyMap<string, Reservation>;

export function reservationsName(gateway: string): string {
  return `webgw-gw-${gateway}-reservations`;
}

const PORT_PREFIX = 'tcp/';

/** Lines `hostname namespace [releasedAt]` and `tcp/<port> namespace holder [releasedAt]`; lines that do not parse are dropped. */
export function parseReservations(text: string | undefined): Map<string, Reservation> {
  const out = new Map<string, Reservation>();
  for (const line of (text ?? '').split('\n')) {
    const fields = line.trim().split(/\s+/);
    const [key, namespace] = fields;
    if (!key || !namespace || key.startsWith('#')) continue;
    const port = key.startsWith(PORT_PREFIX);
    const [holder, releasedAt] = port ? fields.slice(2) : [undefined, fields[2]];
    if (fields.length > (port ? 4 : 3) || (port && !holder)) continue;
    out.set(key, { namespace, ...(holder ? { holder } : {}), ...(releasedAt ? { releasedAt } : {}) });
  }
  return out;
}

export function renderReservations(reservations: Reservations): string {
  const lines = [...reservations]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, r]) => `${k} ${r.namespace}${r.holder ? ` ${r.holder}` : ''}${r.releasedAt ? ` ${r.releasedAt}` : ''}\n`);
  return `# hostname namespace [released-at] | tcp/<port> namespace holder [released-at]: who holds what on this gateway (webgw controller).\n${lines.join('')}`;
}

/**
 * The reservations after a plan: every name the plan grants is reserved for its holder's
 * namespace; a reservation whose namespace no longer claims it is kept, marked released, until
 * RELEASE_AFTER_MS have passed. Returns when the next one expires (to look again then).
 */
export function nextReservations(
  gateway: string,
  previous: Reservations,
  plans: ReadonlyMap<string, ServicePlan>,
  now: Date,
): { reservations: Map<string, Reservation>; nextExpiry: Date | undefined } {
  const held = new Map<string, Reservation>();
  for (const plan of plans.values()) {
    const namespace = plan.key.split('/')[0] as string;
    for (const gp of plan.gateways) {
      if (gp.gateway !== gateway || !gp.accepted) continue;
      for (const hostname of [...planHostnames(gp), ...gp.awaitingCertificate]) held.set(hostname, { namespace });
      for (const t of gp.tcp) held.set(`${PORT_PREFIX}${t.port}`, { namespace, holder: portHolder(plan.key, t.route) });
    }
  }
  const reservations = new Map<string, Reservation>(held);
  let nextExpiry: number | undefined;
  for (const [hostname, r] of previous) {
    if (held.has(hostname)) continue;
    const releasedAt = r.releasedAt ?? now.toISOString();
    const expires = Date.parse(releasedAt) + RELEASE_AFTER_MS;
    if (!(expires > now.getTime())) continue; // expired (or unreadable): the name is free
    reservations.set(hostname, { ...r, releasedAt });
    nextExpiry = Math.min(nextExpiry ?? Infinity, expires);
  }
  return { reservations, nextExpiry: nextExpiry === undefined ? undefined : new Date(nextExpiry) };
}

/** For planClaims: per gateway, hostname → the namespace it is reserved for. */
export function reservedNamespaces(byGateway: ReadonlyMap<string, Reservations>): Map<string, Map<string, string>> {
  return new Map(
    [...byGateway].map(([g, r]) => [
      g,
      new Map([...r].filter(([k]) => !k.startsWith(PORT_PREFIX)).map(([h, x]) => [h, x.namespace])),
    ]),
  );
}

/** For planClaims: per gateway, TCP port → the route it is reserved for. */
export function reservedPorts(byGateway: ReadonlyMap<string, Reservations>): Map<string, Map<number, string>> {
  return new Map(
    [...byGateway].map(([g, r]) => [
      g,
      new Map(
        [...r]
          .filter(([k, x]) => k.startsWith(PORT_PREFIX) && x.holder)
          .map(([k, x]) => [Number(k.slice(PORT_PREFIX.length)), x.holder as string]),
      ),
    ]),
  );
}

/** Everything planClaims takes from the reservations. */
export function planReservations(byGateway: ReadonlyMap<string, Reservations>): {
  reserved: Map<string, Map<string, string>>;
  reservedPorts: Map<string, Map<number, string>>;
} {
  return { reserved: reservedNamespaces(byGateway), reservedPorts: reservedPorts(byGateway) };
}

/** Every gateway's reservations, from the ConfigMaps the controller keeps (`get` reads its cache). */
export function readReservations(
  gateways: readonly string[],
  get: (configMapName: string) => { data?: Record<string, string> } | undefined,
): Map<string, Reservations> {
  return new Map(
    gateways.map((g) => {
      const configMap = get(reservationsName(g));
      if (!configMap) return [g, parseReservations(undefined)];
      // A cached object is replaced, never changed, when the ConfigMap changes: parse each once
      // (issue 15: parsing them on every plan was a tenth of the planning's CPU).
      let parsed = parsedConfigMaps.get(configMap);
      if (!parsed) parsedConfigMaps.set(configMap, (parsed = parseReservations(configMap.data?.[RESERVATIONS_KEY])));
      return [g, parsed];
    }),
  );
}

const parsedConfigMaps = new WeakMap<object, Reservations>();
