/**
 * Which hostnames a Gateway with spec.acme orders certificates for: the names of HTTP routes and
 * of TLS routes it terminates that the claims plan accepted on it (so never a name its hostnamePolicy refused or another tenant
 * holds), that its spec.tls certificate does not already cover, one name per certificate
 * (HTTP-01 cannot prove a wildcard). Bounded per Gateway (the certificates travel to the edge in
 * one Secret) and per namespace (one tenant cannot spend the account's rate limits), oldest
 * services first as the plan lists them. Pure.
 */
import type { Gateway } from '../../crds/types.ts';
import { hostnameMatches } from '../../pki/grants.ts';
import type { ServicePlan } from '../exposedservice/claims.ts';

/** Certificates per Gateway: ~5 KiB each with the key, well under a Secret's 1 MiB. */
export const MAX_ACME_CERTIFICATES_PER_GATEWAY = 150;
/** Certificates one namespace may hold on one Gateway. */
export const MAX_ACME_CERTIFICATES_PER_NAMESPACE = 20;
/** Names left out that the status lists (the rest are counted in the message only). */
export const MAX_OMITTED_LISTED = 100;

export interface AcmeWanted {
  /** Hostname → the `namespace/name` of the ExposedService it is ordered for. */
  names: Map<string, string>;
  /** Names past the bounds: not ordered, and said so (the first MAX_OMITTED_LISTED). */
  omitted: string[];
}

export function acmeWanted(gw: Gateway, plans: Iterable<ServicePlan>): AcmeWanted {
  const names = new Map<string, string>();
  const omitted: string[] = [];
  if (!gw.spec.acme || !gw.spec.listeners.http || !gw.spec.listeners.https) return { names, omitted };
  const domainNames = gw.status?.certificate?.names ?? [];
  const perNamespace = new Map<string, number>();
  for (const plan of plans) {
    const gp = plan.gateways.find((g) => g.gateway === gw.metadata.name && g.accepted);
    if (!gp) continue;
    const namespace = plan.key.split('/')[0] ?? '';
    for (const hostname of [...gp.https, ...gp.http, ...gp.tlsTerminated, ...gp.awaitingCertificate]) {
      if (names.has(hostname) || hostname.startsWith('*.') || domainNames.some((d) => hostnameMatches(d, hostname)))
        continue;
      const held = perNamespace.get(namespace) ?? 0;
      if (held >= MAX_ACME_CERTIFICATES_PER_NAMESPACE || names.size >= MAX_ACME_CERTIFICATES_PER_GATEWAY) {
        if (omitted.length < MAX_OMITTED_LISTED && !omitted.includes(hostname)) omitted.push(hostname);
        continue;
      }
      perNamespace.set(namespace, held + 1);
      names.set(hostname, plan.key);
    }
  }
  return { names, omitted };
}
