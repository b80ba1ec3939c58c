/**
 * TLS routes the agents terminate (termination: Agent), as the credential Secret carries them:
 * per name the certificate, its key and, while an order waits for validation, the TLS-ALPN-01
 * challenge (acme/agent-orders.ts), under file names the agent config points at (so a renewal
 * or a challenge changes files, never the config, and the agent reloads them live). Pure.
 */
import { createHash } from 'node:crypto';
import type { EndpointCertificateStatus, ExposedService, ExposedServiceRoute } from '../../crds/types.ts';
import type { ServicePlan } from './claims.ts';

/** What the Secret holds for one name, and the state the status shows. */
export interface AgentTlsName {
  certPem?: string;
  keyPem?: string;
  challengePem?: string;
  status: EndpointCertificateStatus;
}

/** Secret keys (= file names beside agent.yaml) of a name's certificate, key and challenge. */
export function agentTlsFiles(hostname: string): { certFile: string; keyFile: string; challengeFile: string } {
  const id = createHash('sha256').update(hostname).digest('hex').slice(0, 16);
  return { certFile: `tls-${id}.crt`, keyFile: `tls-${id}.key`, challengeFile: `tls-${id}.challenge` };
}

/**
 * What the agent offers for a route it terminates, from what its backend speaks: ALPN, and for
 * HTTP/1.1 the X-Forwarded-* fields on each request (HTTP/2 and unstated protocols are relayed).
 */
export function agentAlpn(route: ExposedServiceRoute): { alpn?: string[]; forwardedHeaders?: boolean } {
  if (route.backendProtocol === 'H2C') return { alpn: ['h2'] };
  if (route.backendProtocol === 'HTTP1') return { alpn: ['http/1.1'], forwardedHeaders: true };
  return {};
}

/** True when `route` asked for `hostname` (by name or as <subdomain>.<domain>). */
export function routeAsks(route: ExposedServiceRoute, hostname: string): boolean {
  return (
    (route.hostnames ?? []).map((h) => h.toLowerCase()).includes(hostname) ||
    (route.subdomain !== undefined && hostname.startsWith(`${route.subdomain}.`))
  );
}

/**
 * The names the agents terminate, each with the accepted gateways that pass it through: names a
 * termination: Agent route asked for that the plan granted as TLS on some gateway.
 */
export function agentTerminatedNames(service: ExposedService, plan: ServicePlan): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const routes = service.spec.routes.filter((r) => r.protocol === 'TLS' && r.termination === 'Agent');
  for (const gp of plan.gateways.filter((g) => g.accepted)) {
    for (const hostname of gp.tls) {
      if (!routes.some((r) => routeAsks(r, hostname))) continue;
      out.set(hostname, [...(out.get(hostname) ?? []), gp.gateway]);
    }
  }
  return new Map([...out].sort(([a], [b]) => a.localeCompare(b)));
}
