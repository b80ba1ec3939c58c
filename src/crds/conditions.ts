/**
 * Condition types and reasons of the WebGW custom resources (metav1.Condition shape). One place,
 * typed, so reconcilers, tests and docs use the same words.
 */
export const GatewayCondition = {
  /** The spec is valid and the controller will act on it. */
  Accepted: 'Accepted',
  /** The proxy workload, its certificates and config are applied. */
  Programmed: 'Programmed',
  /** Proxy pods run and serve. */
  Ready: 'Ready',
  /** spec.tls: the certificate is valid, covers *.<domain> and is handed to the proxy pods. */
  CertificateReady: 'CertificateReady',
} as const;

export const ExposedServiceCondition = {
  Accepted: 'Accepted',
  /** Every named gateway exists and admits this namespace. */
  ResolvedRefs: 'ResolvedRefs',
  /** Credentials and agent config are written for every accepted gateway with a tunnel endpoint. */
  Programmed: 'Programmed',
  /** Every accepted gateway has an agent session of this service on each replica it can be read on. */
  Ready: 'Ready',
  /** A hostname is already held by an older ExposedService on that gateway. */
  HostnameConflict: 'HostnameConflict',
  /** Sidecar mode: every selected pod runs the agent (False lists those that do not). */
  AgentInjected: 'AgentInjected',
  /** Every HTTPS name has its certificate served (False: pending or failed ACME orders, named). */
  CertificateReady: 'CertificateReady',
} as const;

export const ConditionReason = {
  Accepted: 'Accepted',
  Invalid: 'Invalid',
  Programmed: 'Programmed',
  ApplyFailed: 'ApplyFailed',
  AdmissionListFull: 'AdmissionListFull',
  ObjectInTheWay: 'ObjectInTheWay',
  HostnameNotAllowed: 'HostnameNotAllowed',
  NamespaceQuotaExceeded: 'NamespaceQuotaExceeded',
  PodsReady: 'PodsReady',
  PodsNotReady: 'PodsNotReady',
  NoMatchingNodes: 'NoMatchingNodes',
  GatewayNotFound: 'GatewayNotFound',
  NamespaceNotAllowed: 'NamespaceNotAllowed',
  HostnameConflict: 'HostnameConflict',
  NoConflicts: 'NoConflicts',
  PortsExhausted: 'PortsExhausted',
  AllInjected: 'AllInjected',
  PodsWithoutAgent: 'PodsWithoutAgent',
  NoTunnelEndpoint: 'NoTunnelEndpoint',
  AgentsConnected: 'AgentsConnected',
  NoAgentConnected: 'NoAgentConnected',
  CertificateIssued: 'CertificateIssued',
  CertificateInvalid: 'CertificateInvalid',
  CertificateExpired: 'CertificateExpired',
  SecretNotFound: 'SecretNotFound',
  /** spec.acme: a certificate is being ordered. */
  CertificatePending: 'CertificatePending',
  /** spec.acme: an order failed (the ACME problem in the message); retried with backoff. */
  CertificateFailed: 'CertificateFailed',
  /** spec.tls is not set: HTTPS is passed through only. */
  NoCertificate: 'NoCertificate',
  /** The controller has not read the gateways' session tables yet. */
  AgentsNotObserved: 'AgentsNotObserved',
} as const;

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

/**
 * Sets a condition the way apimachinery's meta.SetStatusCondition does: lastTransitionTime
 * changes only when the status flips, so an unchanged status writes nothing new.
 */
export function setCondition(
  conditions: readonly Condition[],
  next: Omit<Condition, 'lastTransitionTime'>,
  now: Date,
): Condition[] {
  const existing = conditions.find((c) => c.type === next.type);
  const lastTransitionTime =
    existing && existing.status === next.status
      ? existing.lastTransitionTime
      : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const updated: Condition = { ...next, lastTransitionTime };
  return existing ? conditions.map((c) => (c.type === next.type ? updated : c)) : [...conditions, updated];
}
