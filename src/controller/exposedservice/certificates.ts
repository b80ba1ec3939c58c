/**
 * The certificates an ExposedService's HTTPS names are served with, as the tenant sees them
 * (status.endpoints[].certificates and the CertificateReady condition): the Gateway's spec.tls
 * certificate for names under its domain, and per own hostname the one spec.acme obtained —
 * Ready, Pending while it is ordered, or Failed with the ACME problem and the next attempt.
 * Pure, from the Gateway's status (which the controller alone writes).
 */
import type { Condition } from '../../crds/conditions.ts';
import { ConditionReason } from '../../crds/conditions.ts';
import type { EndpointCertificateStatus, Gateway } from '../../crds/types.ts';
import { hostnameMatches } from '../../pki/grants.ts';
import type { GatewayPlan } from './claims.ts';

export function endpointCertificates(gp: GatewayPlan, gateway: Gateway | undefined): EndpointCertificateStatus[] {
  if (!gateway?.spec.listeners.https) return [];
  const out: EndpointCertificateStatus[] = [];
  const domain = gateway.status?.certificate;
  const terminated = [...gp.https, ...gp.tlsTerminated];
  const underDomain = domain ? terminated.filter((h) => domain.names.some((n) => hostnameMatches(n, h))) : [];
  if (domain && underDomain.length > 0)
    out.push({
      names: underDomain,
      state: 'Ready',
      source: 'Gateway',
      issuer: domain.issuer,
      notAfter: domain.notAfter,
    });
  const acme = gateway.status?.acme;
  if (!gateway.spec.acme) return out;
  for (const hostname of [...gp.https, ...gp.http, ...gp.tlsTerminated, ...gp.awaitingCertificate]) {
    if (
      underDomain.includes(hostname) ||
      hostname.startsWith('*.') ||
      (domain?.names ?? []).some((n) => hostnameMatches(n, hostname))
    )
      continue;
    const issued = acme?.certificates?.find((c) => c.hostname === hostname);
    const failure = acme?.failures?.find((f) => f.hostname === hostname);
    if (issued) {
      const renewal = failure
        ? {
            message: `served; its renewal failed: ${failure.problem} (attempt ${failure.attempts}; next at ${failure.retryAt})`,
          }
        : {};
      out.push({
        names: [hostname],
        state: 'Ready',
        source: 'ACME',
        issuer: issued.issuer,
        notAfter: issued.notAfter,
        ...renewal,
      });
    } else if (acme?.omitted?.includes(hostname))
      out.push({
        names: [hostname],
        state: 'Failed',
        source: 'ACME',
        message: 'not ordered: the Gateway holds the most ACME certificates it allows, in all or for this namespace',
      });
    else if (failure)
      out.push({
        names: [hostname],
        state: 'Failed',
        source: 'ACME',
        message: `${failure.problem} (attempt ${failure.attempts}; next at ${failure.retryAt})`,
      });
    else
      out.push({
        names: [hostname],
        state: 'Pending',
        source: 'ACME',
        message: `ordering from ${gateway.spec.acme.directoryUrl}`,
      });
  }
  return out;
}

/**
 * CertificateReady of an ExposedService: True when every certificate its names need is served,
 * False naming those pending or failed; undefined when it has no HTTPS name (no condition).
 */
export function serviceCertificateCondition(
  endpoints: ReadonlyArray<{ gateway: string; certificates: readonly EndpointCertificateStatus[] }>,
): Pick<Condition, 'status' | 'reason' | 'message'> | undefined {
  const all = endpoints.flatMap((e) => e.certificates.map((c) => ({ ...c, gateway: e.gateway })));
  if (all.length === 0) return undefined;
  const failed = all.filter((c) => c.state === 'Failed');
  const pending = all.filter((c) => c.state === 'Pending');
  const describe = (c: EndpointCertificateStatus & { gateway: string }): string =>
    `${c.names.join(', ')} on ${c.gateway}: ${c.message ?? c.state}`;
  if (failed.length > 0)
    return {
      status: 'False',
      reason: ConditionReason.CertificateFailed,
      message: [...failed, ...pending].map(describe).join('; '),
    };
  if (pending.length > 0)
    return { status: 'False', reason: ConditionReason.CertificatePending, message: pending.map(describe).join('; ') };
  const soonest = all.map((c) => c.notAfter ?? '').sort()[0];
  return {
    status: 'True',
    reason: ConditionReason.CertificateIssued,
    message: `${all.length} certificate(s) served${soonest ? `, the first to expire on ${soonest}` : ''}`,
  };
}
