/**
 * A Gateway's status, a pure function of what the reconciler observed (the pods that run, the
 * nodes they run on, the replicas' session tables, the certificates) and of how the apply went.
 * The objects it describes are in desired.ts.
 */
import { ConditionReason, GatewayCondition, setCondition, type Condition } from '../../crds/conditions.ts';
import type { GatewayStatus } from '../../crds/types.ts';
import type { InspectedCertificate } from './served-certificate.ts';
import {
  desiredGatewayObjects,
  dialAddress,
  gatewayObjectNames,
  validateGateway,
  type GatewayDesired,
  type GatewayInputs,
} from './desired.ts';

/** Objects and status together (tests, and a reader who wants the whole picture). */
export function desiredGateway(inputs: GatewayInputs): GatewayDesired {
  const { invalid, objects } = desiredGatewayObjects(inputs);
  return { invalid, objects, status: gatewayStatus(inputs) };
}

/** The Gateway's status from what was observed and how the apply went (inputs.applyError). */
export function gatewayStatus(inputs: GatewayInputs): GatewayStatus {
  const gw = inputs.gateway;
  const names = gatewayObjectNames(gw.metadata.name);
  const generation = gw.metadata.generation ?? 0;
  const invalid = validateGateway(gw);
  let conditions: Condition[] = gw.status?.conditions ?? [];
  const set = (type: string, ok: boolean, reason: string, message: string): void => {
    conditions = setCondition(
      conditions,
      { type, status: ok ? 'True' : 'False', reason, message, observedGeneration: generation },
      inputs.now,
    );
  };
  if (invalid.length > 0) {
    set(GatewayCondition.Accepted, false, ConditionReason.Invalid, invalid.join('; '));
    set(GatewayCondition.Programmed, false, ConditionReason.Invalid, 'not programmed: the Gateway is invalid');
    set(GatewayCondition.Ready, false, ConditionReason.Invalid, 'not programmed: the Gateway is invalid');
    return { ...gw.status, observedGeneration: generation, conditions };
  }
  const workloadKind = gw.spec.placement.replicas === undefined ? 'DaemonSet' : 'Deployment';
  // Status from the pods that actually run, and the nodes they run on.
  const ready = inputs.pods.filter((p) => p.ready && p.nodeName);
  const nodeByName = new Map(inputs.nodes.map((n) => [n.name, n]));
  const addresses: string[] = [];
  for (const pod of ready) {
    const address = dialAddress(nodeByName.get(pod.nodeName as string));
    if (address && !addresses.includes(address)) addresses.push(address);
  }
  addresses.sort();
  const tunnelPort = gw.spec.listeners.tunnel.port;
  set(GatewayCondition.Accepted, true, ConditionReason.Accepted, 'the Gateway is valid');
  if (inputs.applyError) set(GatewayCondition.Programmed, false, ConditionReason.ApplyFailed, inputs.applyError);
  else if (inputs.admissionOmitted)
    set(
      GatewayCondition.Programmed,
      false,
      ConditionReason.AdmissionListFull,
      `the admission list is full: the agents of ${inputs.admissionOmitted} newest ExposedServices are not admitted`,
    );
  else
    set(
      GatewayCondition.Programmed,
      true,
      ConditionReason.Programmed,
      `proxy ${workloadKind} ${names.workload} in ${inputs.namespace}`,
    );
  if (gw.spec.tls) certificateCondition(inputs.certificate, set);
  else conditions = conditions.filter((c) => c.type !== GatewayCondition.CertificateReady);
  const desired = inputs.desiredReplicas;
  if (desired === 0)
    set(GatewayCondition.Ready, false, ConditionReason.NoMatchingNodes, 'no node matches spec.placement');
  else if (ready.length >= desired)
    set(GatewayCondition.Ready, true, ConditionReason.PodsReady, `${ready.length}/${desired} proxy pods ready`);
  else set(GatewayCondition.Ready, false, ConditionReason.PodsNotReady, `${ready.length}/${desired} proxy pods ready`);

  const { certificate: _previous, acme: _previousAcme, ...status } = gw.status ?? {};
  const acme =
    inputs.acme && inputs.acme.certificates.length + inputs.acme.failures.length + inputs.acme.omitted.length > 0
      ? {
          acme: {
            ...(inputs.acme.certificates.length > 0
              ? {
                  certificates: inputs.acme.certificates
                    .map((c) => c.status)
                    .sort((a, b) => a.hostname.localeCompare(b.hostname)),
                }
              : {}),
            ...(inputs.acme.failures.length > 0 ? { failures: [...inputs.acme.failures] } : {}),
            ...(inputs.acme.omitted.length > 0 ? { omitted: [...inputs.acme.omitted] } : {}),
          },
        }
      : {};
  return {
    ...status,
    ...(inputs.certificate?.ready ? { certificate: inputs.certificate.status } : {}),
    ...acme,
    observedGeneration: generation,
    conditions,
    addresses: addresses.map((value) => ({ type: 'IPAddress' as const, value })),
    tunnelEndpoints: addresses.map((a) => `wss://${a.includes(':') ? `[${a}]` : a}:${tunnelPort}`),
    replicas: { desired, ready: ready.length },
    ...(inputs.attachedServices === undefined ? {} : { attachedServices: inputs.attachedServices }),
    ...(inputs.proxies === undefined
      ? {}
      : { proxies: [...inputs.proxies], sessions: inputs.proxies.reduce((n, p) => n + p.sessions, 0) }),
  };
}

/**
 * CertificateReady (Gateways with spec.tls): True with what is served and until when, or
 * False with why (the Secret missing, not a pair, expired, not covering *.<domain>).
 */
function certificateCondition(
  cert: InspectedCertificate | undefined,
  set: (type: string, ok: boolean, reason: string, message: string) => void,
): void {
  if (!cert)
    set(
      GatewayCondition.CertificateReady,
      false,
      ConditionReason.SecretNotFound,
      'the certificate has not been read yet',
    );
  else if (cert.ready) set(GatewayCondition.CertificateReady, true, ConditionReason.CertificateIssued, cert.message);
  else set(GatewayCondition.CertificateReady, false, ConditionReason[cert.reason], cert.message);
}
