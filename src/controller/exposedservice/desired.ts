/**
 * What an ExposedService should produce, as a pure function of its claims plan (claims.ts), the
 * Gateways it resolved and the agent credentials issued for them: the credential Secret (agent
 * config, and per gateway a certificate whose grants are exactly what was accepted, its key and
 * the gateway's CA) and the status with the URLs and TCP addresses that were granted.
 */
import type { V1Secret } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { ConditionReason, ExposedServiceCondition, setCondition, type Condition } from '../../crds/conditions.ts';
import { type ExposedService, type ExposedServiceStatus, type Gateway } from '../../crds/types.ts';
import { tunnelServerName } from '../gateway/desired.ts';
import type { GatewayPlan, ServicePlan } from './claims.ts';
import { endpointCertificates, serviceCertificateCondition } from './certificates.ts';
import { agentAlpn, agentTlsFiles, routeAsks, type AgentTlsName } from './agent-tls.ts';
import { controllerReference } from '../runtime/ownership.ts';
import type { ReplicaSessions } from '../sessions/observations.ts';

export const AGENT_DIR = '/etc/webgw-agent';
export const AGENT_ADMIN_PORT = 9903;

export interface AgentCredential {
  certPem: string;
  keyPem: string;
  caPem: string;
}

export interface ExposedServiceInputs {
  service: ExposedService;
  plan: ServicePlan;
  gateways: ReadonlyMap<string, Gateway>;
  /** Per gateway name, for accepted gateway plans. */
  credentials: ReadonlyMap<string, AgentCredential>;
  /** Sidecar mode: selected pods that run without the agent (names). */
  podsWithoutAgent?: readonly string[];
  /** How many agents should connect to each replica: pods with the agent, or connector replicas. */
  agentPods?: number;
  /**
   * Per accepted gateway, this service's sessions on each of its replicas as last read
   * (controller/sessions); a gateway not read yet is absent (its last status entry stays).
   */
  sessions?: ReadonlyMap<string, readonly ReplicaSessions[]>;
  /** TLS names the agents terminate (agent-tls.ts): what the Secret carries and the state. */
  agentTls?: ReadonlyMap<string, AgentTlsName>;
  /** Objects of our names that we did not create (never adopted): `Kind namespace/name`. */
  inTheWay?: readonly string[];
  /** Writing the Secret or the connector failed (the reconcile is retried): what the API server said. */
  applyError?: string;
  now: Date;
}

export function credentialSecretName(service: string): string {
  return `webgw-agent-${service}`;
}

/** The agent's backend for a route: loopback beside the workload, or the Service (Connector). */
function backendAddress(service: ExposedService, port: number): string {
  return service.spec.mode === 'Connector'
    ? `${service.spec.backend.service}.${service.metadata.namespace}.svc:${port}`
    : `127.0.0.1:${port}`;
}

function servedPlans(inputs: ExposedServiceInputs): GatewayPlan[] {
  return inputs.plan.gateways.filter(
    (g) =>
      g.accepted &&
      inputs.credentials.has(g.gateway) &&
      (inputs.gateways.get(g.gateway)?.status?.tunnelEndpoints?.length ?? 0) > 0,
  );
}

/** The config file the agent sidecar (or connector) runs with. */
export function agentConfig(inputs: ExposedServiceInputs): Record<string, unknown> {
  const { service } = inputs;
  const served = servedPlans(inputs);
  const portFor = (routeIndex: number): number =>
    service.spec.routes[routeIndex]?.backend?.port ?? service.spec.backend.port;
  const routes: Array<Record<string, unknown>> = [];
  const seen = new Set<string>();
  for (const gp of served) {
    service.spec.routes.forEach((route, index) => {
      if (route.protocol === 'TCP') return;
      // The agent serves a terminated name as it serves a plain one: https is http to it.
      const names = route.protocol === 'HTTP' ? [...gp.http, ...gp.https] : [...gp.tls, ...gp.tlsTerminated];
      for (const hostname of names) {
        const key = `${route.protocol} ${hostname}`;
        if (seen.has(key)) continue;
        // A name in this gateway's grants that this route asked for.
        if (!routeAsks(route, hostname)) continue;
        seen.add(key);
        // Terminated by the agent: files beside agent.yaml, which may appear only later.
        const terminate =
          route.protocol === 'TLS' && route.termination === 'Agent' && gp.tls.includes(hostname)
            ? { terminate: { ...agentTlsFiles(hostname), ...agentAlpn(route) } }
            : {};
        routes.push({
          protocol: route.protocol.toLowerCase(),
          hostname,
          backend: backendAddress(service, portFor(index)),
          ...terminate,
        });
      }
    });
    for (const alloc of gp.tcp)
      routes.push({
        protocol: 'tcp',
        port: alloc.port,
        gateway: gp.gateway,
        backend: backendAddress(service, alloc.backendPort),
      });
  }
  return {
    name: `${service.metadata.namespace}/${service.metadata.name}`,
    gateways: served.map((gp) => ({
      name: gp.gateway,
      endpoints: inputs.gateways.get(gp.gateway)?.status?.tunnelEndpoints ?? [],
      serverName: tunnelServerName(gp.gateway),
      // Relative to agent.yaml: the whole Secret is mounted at AGENT_DIR.
      caFile: `${gp.gateway}-ca.crt`,
      certFile: `${gp.gateway}.crt`,
      keyFile: `${gp.gateway}.key`,
    })),
    routes,
    // Defaults may be missing on objects read while the CRD's storage re-initializes (an upgrade).
    proxyProtocol: (service.spec.proxyProtocol ?? 'None').toLowerCase(),
    // On the pod's address: the kubelet's readiness probe comes from the node (issue 13).
    admin: { address: '0.0.0.0', port: AGENT_ADMIN_PORT },
  };
}

/** What works: https:// for names served over TLS (terminated or passed through), http:// for plain HTTP. */
function urlsFor(gp: GatewayPlan, gateway: Gateway | undefined): string[] {
  const port = (p: number | undefined, def: number): string => (p === undefined || p === def ? '' : `:${p}`);
  const https = gateway?.spec.listeners.https
    ? [...gp.https, ...gp.tls, ...gp.tlsTerminated].map(
        (h) => `https://${h}${port(gateway.spec.listeners.https?.port, 443)}`,
      )
    : [];
  const http = gateway?.spec.listeners.http
    ? gp.http.map((h) => `http://${h}${port(gateway.spec.listeners.http?.port, 80)}`)
    : [];
  return [...http, ...https];
}

export function desiredExposedService(inputs: ExposedServiceInputs): {
  secret: V1Secret;
  status: ExposedServiceStatus;
} {
  return { secret: credentialSecret(inputs), status: serviceStatus(inputs) };
}

/** The credential Secret: agent config, and per gateway its certificate, key and CA. */
export function credentialSecret(inputs: ExposedServiceInputs): V1Secret {
  const { service } = inputs;
  const stringData: Record<string, string> = { 'agent.yaml': stringify(agentConfig(inputs)) };
  for (const [gw, cred] of [...inputs.credentials].sort(([a], [b]) => a.localeCompare(b))) {
    stringData[`${gw}.crt`] = cred.certPem;
    stringData[`${gw}.key`] = cred.keyPem;
    stringData[`${gw}-ca.crt`] = cred.caPem;
  }
  for (const [hostname, tls] of inputs.agentTls ?? []) {
    const files = agentTlsFiles(hostname);
    if (tls.certPem && tls.keyPem) {
      stringData[files.certFile] = tls.certPem;
      stringData[files.keyFile] = tls.keyPem;
    }
    if (tls.challengePem) stringData[files.challengeFile] = tls.challengePem;
  }
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: credentialSecretName(service.metadata.name),
      namespace: service.metadata.namespace,
      labels: {
        'app.kubernetes.io/name': 'webgw',
        'app.kubernetes.io/managed-by': 'webgw',
        'webgw.io/exposed-service': service.metadata.name,
      },
      ownerReferences: [
        controllerReference({ kind: 'ExposedService', name: service.metadata.name, uid: service.metadata.uid }),
      ],
    },
    stringData,
  };
  return secret;
}

/** The status: conditions and, per accepted gateway, the URLs and TCP addresses granted. */
export function serviceStatus(inputs: ExposedServiceInputs): ExposedServiceStatus {
  const { service, plan, now } = inputs;
  const generation = service.metadata.generation ?? 0;
  let conditions: Condition[] = service.status?.conditions ?? [];
  const set = (type: string, status: boolean, reason: string, message: string): void => {
    conditions = setCondition(
      conditions,
      { type, status: status ? 'True' : 'False', reason, message, observedGeneration: generation },
      now,
    );
  };
  const refused = plan.gateways.filter((g) => !g.accepted);
  const conflicts = plan.gateways.flatMap((g) =>
    g.conflicts.map((c) => `${c.protocol} ${c.hostname} on ${g.gateway} is held by ${c.holder}`),
  );
  set(
    ExposedServiceCondition.ResolvedRefs,
    plan.missingGateways.length === 0,
    plan.missingGateways.length === 0 ? ConditionReason.Accepted : ConditionReason.GatewayNotFound,
    plan.missingGateways.length === 0
      ? `${plan.gateways.length} gateway(s) resolved`
      : `Gateway(s) not found: ${plan.missingGateways.join(', ')}`,
  );
  set(
    ExposedServiceCondition.Accepted,
    refused.length === 0 && plan.gateways.length > 0,
    refused[0]?.reason ?? (plan.gateways.length > 0 ? ConditionReason.Accepted : ConditionReason.GatewayNotFound),
    refused.length > 0
      ? refused.map((g) => g.message).join('; ')
      : plan.gateways.length > 0
        ? 'accepted'
        : 'no gateway selected',
  );
  const refusedNames = plan.gateways.flatMap((g) => g.refused.map((r) => `${r.hostname} on ${g.gateway}: ${r.why}`));
  const problems = [...conflicts, ...refusedNames];
  set(
    ExposedServiceCondition.HostnameConflict,
    problems.length > 0,
    conflicts.length > 0
      ? ConditionReason.HostnameConflict
      : refusedNames.length > 0
        ? ConditionReason.HostnameNotAllowed
        : ConditionReason.NoConflicts,
    problems.length > 0 ? problems.join('; ') : 'no conflicts',
  );
  const served = servedPlans(inputs);
  const blocked = inputs.inTheWay ?? [];
  const sessions = sessionsOf(inputs, served);
  if (blocked.length > 0) {
    const message = `${blocked.join(' and ')} exist(s) and were not created by webgw for this ExposedService; they are left untouched: delete or rename them`;
    set(ExposedServiceCondition.Programmed, false, ConditionReason.ObjectInTheWay, message);
    set(ExposedServiceCondition.Ready, false, ConditionReason.ObjectInTheWay, message);
  } else if (inputs.applyError) {
    set(ExposedServiceCondition.Programmed, false, ConditionReason.ApplyFailed, inputs.applyError);
  } else if (served.length === 0) {
    set(
      ExposedServiceCondition.Programmed,
      false,
      ConditionReason.NoTunnelEndpoint,
      'no accepted gateway has a tunnel endpoint yet',
    );
    set(
      ExposedServiceCondition.Ready,
      false,
      ConditionReason.NoTunnelEndpoint,
      'no accepted gateway has a tunnel endpoint yet',
    );
  } else {
    set(
      ExposedServiceCondition.Programmed,
      true,
      ConditionReason.Programmed,
      `credentials issued for ${served.map((g) => g.gateway).join(', ')}`,
    );
    const ready = readiness(
      served.map((g) => g.gateway),
      sessions,
      inputs.agentPods,
    );
    conditions = setCondition(
      conditions,
      { type: ExposedServiceCondition.Ready, ...ready, observedGeneration: generation },
      now,
    );
  }

  if (service.spec.mode === 'Sidecar') {
    const missing = inputs.podsWithoutAgent ?? [];
    const names = missing.slice(0, 5).join(', ') + (missing.length > 5 ? `, and ${missing.length - 5} more` : '');
    set(
      ExposedServiceCondition.AgentInjected,
      missing.length === 0,
      missing.length === 0 ? ConditionReason.AllInjected : ConditionReason.PodsWithoutAgent,
      missing.length === 0
        ? 'every selected pod runs the agent'
        : `${missing.length} selected pod(s) run without the agent (created before this ExposedService, in a namespace without webgw.io/injection=enabled, or while the webhook was down); restart them: ${names}`,
    );
  }

  const endpoints = plan.gateways
    .filter((g) => g.accepted)
    .map((gp) => {
      const gateway = inputs.gateways.get(gp.gateway);
      const addresses = gateway?.status?.addresses?.map((a) => a.value) ?? [];
      const urls = urlsFor(gp, gateway);
      const tcp = gp.tcp.flatMap((a) =>
        (addresses.length > 0 ? addresses : [undefined]).map((address) => ({
          ...(address ? { address } : {}),
          port: a.port,
          backendPort: a.backendPort,
        })),
      );
      const replicas = sessions.get(gp.gateway);
      const connected =
        replicas === undefined
          ? {}
          : { sessions: replicas.reduce((n, r) => n + r.sessions, 0), replicas: [...replicas] };
      // Names the gateway terminates TLS for: whose certificate, its state, and until when.
      const certificates = [
        ...endpointCertificates(gp, gateway),
        ...[...(inputs.agentTls ?? [])].filter(([h]) => gp.tls.includes(h)).map(([, t]) => t.status),
      ];
      return {
        gateway: gp.gateway,
        ...(urls.length > 0 ? { urls } : {}),
        ...(tcp.length > 0 ? { tcp } : {}),
        ...(certificates.length > 0 ? { certificates } : {}),
        ...connected,
      };
    });
  const certificateReady = serviceCertificateCondition(
    endpoints.map((e) => ({ gateway: e.gateway, certificates: e.certificates ?? [] })),
  );
  if (certificateReady)
    conditions = setCondition(
      conditions,
      { type: ExposedServiceCondition.CertificateReady, ...certificateReady, observedGeneration: generation },
      now,
    );
  else conditions = conditions.filter((c) => c.type !== ExposedServiceCondition.CertificateReady);
  const accepted = plan.gateways.filter((g) => g.accepted).length;
  const connectedGateways = `${served.filter((g) => (sessions.get(g.gateway) ?? []).some((r) => r.sessions > 0)).length}/${accepted}`;
  return { ...service.status, observedGeneration: generation, conditions, connectedGateways, endpoints };
}

/** Sessions per served gateway: as read now, else as the last status showed them. */
function sessionsOf(
  inputs: ExposedServiceInputs,
  served: readonly GatewayPlan[],
): Map<string, readonly ReplicaSessions[]> {
  const out = new Map<string, readonly ReplicaSessions[]>();
  for (const gp of served) {
    const now = inputs.sessions?.get(gp.gateway);
    const before = inputs.service.status?.endpoints?.find((e) => e.gateway === gp.gateway)?.replicas;
    const replicas = now ?? before;
    if (replicas) out.set(gp.gateway, replicas);
  }
  return out;
}

/**
 * Ready: every served gateway has this service's agents on each replica the controller can
 * read (an unreachable replica is the gateway's failure, named in the message, not this
 * service's), and at least one session in all.
 */
export function readiness(
  gateways: readonly string[],
  sessions: ReadonlyMap<string, readonly ReplicaSessions[]>,
  agentPods: number | undefined,
): Pick<Condition, 'status' | 'reason' | 'message'> {
  const missing: string[] = [];
  const fine: string[] = [];
  const unread: string[] = [];
  for (const gw of gateways) {
    const replicas = sessions.get(gw);
    if (!replicas) {
      unread.push(gw);
      continue;
    }
    const reachable = replicas.filter((r) => r.reachable);
    const down = replicas.filter((r) => !r.reachable).map((r) => `replica ${r.name} unreachable`);
    const agents = Math.max(0, ...reachable.map((r) => r.sessions));
    const of = agentPods === undefined ? '' : ` of ${agentPods}`;
    const empty = reachable.filter((r) => r.sessions === 0);
    if (reachable.length === 0)
      missing.push(`${gw}: ${replicas.length === 0 ? 'no proxy replica runs' : down.join(', ')}`);
    else if (agents === 0 && agentPods === 0)
      missing.push(`no selected pod runs the agent, so none is connected to ${gw}`);
    else if (agents === 0)
      missing.push(`0${of} pods' agents connected to ${gw}${down.length > 0 ? ` (${down.join(', ')})` : ''}`);
    else if (empty.length > 0)
      missing.push(
        `${gw} replica(s) ${empty.map((r) => r.name).join(', ')} have none of this service's agents (others have ${agents}${of})`,
      );
    else fine.push(`${gw} (${agents}${of} pods' agents${down.length > 0 ? `; ${down.join(', ')}` : ''})`);
  }
  if (missing.length > 0)
    return {
      status: 'False',
      reason: ConditionReason.NoAgentConnected,
      message: [...missing, ...unread.map((g) => `${g} not read yet`)].join('; '),
    };
  if (unread.length > 0)
    return {
      status: 'Unknown',
      reason: ConditionReason.AgentsNotObserved,
      message: `the session tables of ${unread.join(', ')} were not read yet`,
    };
  return { status: 'True', reason: ConditionReason.AgentsConnected, message: `connected to ${fine.join(', ')}` };
}
