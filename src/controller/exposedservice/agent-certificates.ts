/**
 * The gather step for TLS names the agents terminate (termination: Agent): per name the pair the
 * credential Secret holds (or one just issued that it does not hold yet), the challenge to
 * publish, and the state for the status; names without a good pair, or past two thirds of its
 * life, are ordered (acme/agent-orders.ts) under the account of the first Gateway passing the
 * name through. At most MAX_ACME_CERTIFICATES_PER_NAMESPACE names per namespace (oldest services
 * first): one tenant cannot spend the farmer's ACME rate limits.
 */
import type { V1Secret } from '@kubernetes/client-node';
import type { AcmeFailureStatus, EndpointCertificateStatus, ExposedService, Gateway } from '../../crds/types.ts';
import type { AgentOrders, HttpsTarget } from '../acme/agent-orders.ts';
import { checkCertificatePair } from '../acme/certificates.ts';
import { MAX_ACME_CERTIFICATES_PER_NAMESPACE } from '../acme/wanted.ts';
import { secretText } from '../runtime/apply.ts';
import { agentTerminatedNames, agentTlsFiles, type AgentTlsName } from './agent-tls.ts';
import { oldestFirst, serviceKey, type ServicePlan } from './claims.ts';

export interface AgentCertificatesInputs {
  service: ExposedService;
  plan: ServicePlan;
  /** Every plan (the namespace's other services count against its bound). */
  plans: ReadonlyMap<string, ServicePlan>;
  /** The namespace's ExposedServices. */
  neighbours: readonly ExposedService[];
  gateways: ReadonlyMap<string, Gateway>;
  /** Our credential Secret, as cached. */
  current: V1Secret | undefined;
  /** Agents that must all serve a challenge (pods with the agent, or connector replicas). */
  agents: number;
  /** A gateway's replicas, at their HTTPS listener. */
  httpsTargets: (gateway: string) => HttpsTarget[];
  orders: AgentOrders;
  now: Date;
}

export function agentCertificates(i: AgentCertificatesInputs): { names: Map<string, AgentTlsName>; nextLook: number } {
  const key = serviceKey(i.service);
  const wanted = agentTerminatedNames(i.service, i.plan);
  const names = new Map<string, AgentTlsName>();
  let nextLook = Infinity;
  if (wanted.size === 0) return { names, nextLook };
  const allowed = allowedInNamespace(i, key);
  const failures = i.orders.failures(key, new Set(wanted.keys()), previousFailures(i.service));
  const due = new Map<string, string[]>();
  for (const [hostname, gateways] of wanted) {
    const files = agentTlsFiles(hostname);
    const stored = pairIn(i.current, files.certFile, files.keyFile);
    const issued = i.orders.issuedPair(key, hostname);
    if (issued && stored?.certPem === issued.certPem) i.orders.written(key, hostname, issued.certPem);
    const good = [issued, stored]
      .map((p) => (p ? { pair: p, state: checkCertificatePair(hostname, p.certPem, p.keyPem, i.now) } : undefined))
      .find((c) => c?.state);
    const failure = failures.find((f) => f.hostname === hostname);
    const challengePem = i.orders.challenge(key, hostname);
    const base = { names: [hostname], source: 'ACME' as const, terminatedBy: 'Agent' as const };
    let status: EndpointCertificateStatus;
    // The backoff goes in the status too, so that a new leader resumes it (previousFailures).
    const backoff = failure ? { attempts: failure.attempts, retryAt: failure.retryAt } : {};
    if (good?.state) {
      const renewal = failure
        ? {
            message: `served; its renewal failed: ${failure.problem} (attempt ${failure.attempts}; next at ${failure.retryAt})`,
            ...backoff,
          }
        : {};
      status = { ...base, state: 'Ready', issuer: good.state.issuer, notAfter: good.state.notAfter, ...renewal };
      nextLook = Math.min(nextLook, Date.parse(good.state.renewAt));
    } else if (!allowed.has(hostname)) {
      status = {
        ...base,
        state: 'Failed',
        message: `not ordered: namespace ${i.service.metadata.namespace} holds the most agent-terminated certificates it may (${MAX_ACME_CERTIFICATES_PER_NAMESPACE})`,
      };
    } else if (failure) {
      status = {
        ...base,
        state: 'Failed',
        message: `${failure.problem} (attempt ${failure.attempts}; next at ${failure.retryAt})`,
        ...backoff,
      };
    } else {
      const account = accountFor(gateways, i.gateways);
      status = {
        ...base,
        state: 'Pending',
        message: challengePem
          ? 'TLS-ALPN-01 challenge published to the agents; waiting until they serve it'
          : `ordering from ${account?.spec.acme?.directoryUrl ?? 'the ACME server'}`,
      };
    }
    if (failure) nextLook = Math.min(nextLook, Date.parse(failure.retryAt));
    if (allowed.has(hostname) && (!good?.state || Date.parse(good.state.renewAt) <= i.now.getTime())) {
      const account = accountFor(gateways, i.gateways);
      if (account) due.set(account.metadata.name, [...(due.get(account.metadata.name) ?? []), hostname]);
    }
    names.set(hostname, { ...(good ? good.pair : {}), ...(challengePem ? { challengePem } : {}), status });
  }
  for (const [account, hostnames] of due) {
    const gw = i.gateways.get(account);
    if (!gw) continue;
    // Validations land wherever the name's DNS points: any gateway passing it through.
    const through = [...new Set(hostnames.flatMap((h) => wanted.get(h) ?? []))];
    i.orders.request({
      account: gw,
      service: key,
      hostnames,
      agents: i.agents,
      targets: () => through.flatMap((g) => i.httpsTargets(g)),
    });
  }
  return { names, nextLook };
}

/**
 * The failed orders the service's status shows (the backoff a previous leader was in): the
 * issuer resumes it instead of ordering again at once after a restart (ACME servers limit
 * failed validations per name).
 */
export function previousFailures(service: ExposedService): AcmeFailureStatus[] {
  const out: AcmeFailureStatus[] = [];
  for (const e of service.status?.endpoints ?? []) {
    for (const c of e.certificates ?? []) {
      const hostname = c.names[0];
      if (
        c.terminatedBy !== 'Agent' ||
        !hostname ||
        c.attempts === undefined ||
        !c.retryAt ||
        out.some((f) => f.hostname === hostname)
      )
        continue;
      const problem = (c.message ?? '')
        .replace(/^served; its renewal failed: /, '')
        .replace(/ \(attempt \d+; next at [^)]*\)$/, '');
      out.push({ hostname, problem, attempts: c.attempts, retryAt: c.retryAt });
    }
  }
  return out;
}

/** The first Gateway (by name) passing the name through that has spec.acme. */
function accountFor(gateways: readonly string[], all: ReadonlyMap<string, Gateway>): Gateway | undefined {
  return [...gateways]
    .sort()
    .map((g) => all.get(g))
    .find((g) => g?.spec.acme);
}

function pairIn(
  secret: V1Secret | undefined,
  certFile: string,
  keyFile: string,
): { certPem: string; keyPem: string } | undefined {
  const certPem = secretText(secret, certFile);
  const keyPem = secretText(secret, keyFile);
  return certPem && keyPem ? { certPem, keyPem } : undefined;
}

/** This service's names within the namespace's bound, counting its older neighbours' first. */
function allowedInNamespace(i: AgentCertificatesInputs, key: string): Set<string> {
  let held = 0;
  for (const s of oldestFirst(i.neighbours)) {
    const plan = i.plans.get(serviceKey(s));
    if (!plan) continue;
    const names = [...agentTerminatedNames(s, plan).keys()];
    if (serviceKey(s) === key) return new Set(names.slice(0, Math.max(0, MAX_ACME_CERTIFICATES_PER_NAMESPACE - held)));
    held += names.length;
  }
  return new Set();
}
