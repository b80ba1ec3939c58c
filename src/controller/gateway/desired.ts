/**
 * What a Gateway should look like in the cluster: a pure function from the Gateway, its
 * credentials and the observed pods/nodes to the Kubernetes objects it needs (its status:
 * status.ts; docs/architecture.md, Controller). No I/O, no clocks, no randomness: the reconciler gathers the inputs and
 * applies the outputs, and tests call it with tables.
 */
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import type {
  V1ConfigMap,
  V1DaemonSet,
  V1DaemonSetUpdateStrategy,
  V1ObjectMeta,
  V1Deployment,
  V1PodSecurityContext,
  V1PodTemplateSpec,
  V1Probe,
  V1Secret,
  V1SecurityContext,
} from '@kubernetes/client-node';
import { gatewayLimitDefaults, type Gateway, type GatewayStatus } from '../../crds/types.ts';
import { RESERVATIONS_KEY, renderReservations, reservationsName, type Reservations } from '../trust/reservations.ts';
import { controllerReference } from '../runtime/ownership.ts';
import { ADMITTED_AGENTS_FILE, renderAuthorizedAgents } from '../../pki/authorized-agents.ts';
import { GATEWAY_COMMAND } from '../image.ts';
import type { ProxyReplicaStatus } from '../sessions/observations.ts';
import type { InspectedCertificate } from './served-certificate.ts';
import type { AcmeCertificate } from '../acme/certificates.ts';
import type { AcmeFailureStatus } from '../../crds/types.ts';

export const GATEWAY_LABEL = 'webgw.io/gateway';
/** On proxy pods (not their template): a digest of the admitted agents, set by the reconciler. */
export const ADMITTED_DIGEST_ANNOTATION = 'webgw.io/admitted-agents-digest';
export const COMPONENT_LABEL = 'app.kubernetes.io/component';
export const ADMIN_PORT = 9901;
const CONFIG_DIR = '/etc/webgw';
/** An emptyDir for the proxy's ready file (config readyFile, relative to CONFIG_DIR like tls/). */
const STATE_DIR = '/etc/webgw/run';
const READY_FILE = `${STATE_DIR}/ready`;
const TLS_DIR = '/etc/webgw/tls';
/** The certificates the proxy terminates HTTPS with (config listeners.https.certificatesDir). */
const CERTS_DIR = '/etc/webgw/certs';
/** The pair's name in the certificates Secret: the farmer's certificate for the domain. */
export const DOMAIN_CERTIFICATE = 'domain';

/** The DNS name in every gateway's tunnel certificate; agents verify it (serverName). */
export function tunnelServerName(gateway: string): string {
  return `${gateway}.gateway.webgw.io`;
}

export function gatewayObjectNames(gateway: string): {
  workload: string;
  config: string;
  caSecret: string;
  tunnelSecret: string;
  certificatesSecret: string;
} {
  const base = `webgw-gw-${gateway}`;
  return {
    workload: base,
    config: `${base}-config`,
    caSecret: `${base}-ca`,
    tunnelSecret: `${base}-tunnel`,
    certificatesSecret: `${base}-certs`,
  };
}

/** The address agents and clients dial a proxy on: its node's external address, else internal. */
export function dialAddress(node: ObservedNode | undefined): string | undefined {
  return (
    node?.addresses.find((a) => a.type === 'ExternalIP')?.address ??
    node?.addresses.find((a) => a.type === 'InternalIP')?.address
  );
}

export interface TunnelCredentials {
  caPem: string;
  certPem: string;
  keyPem: string;
}

export interface ObservedPod {
  name: string;
  nodeName?: string;
  ready: boolean;
}

export interface ObservedNode {
  name: string;
  addresses: Array<{ type: string; address: string }>;
}

export interface GatewayInputs {
  gateway: Gateway;
  namespace: string;
  image: string;
  credentials: TunnelCredentials;
  pods: readonly ObservedPod[];
  nodes: readonly ObservedNode[];
  /** Desired replica count as the workload reports it (DaemonSet: nodes it schedules to). */
  desiredReplicas: number;
  /** Serials of the agent certificates this gateway admits (trust/admission.ts). */
  admittedAgents: readonly string[];
  /** Services the admission list had no room for (MAX_ADMITTED_AGENTS). */
  admissionOmitted?: number;
  /** Which namespace holds each hostname on this gateway (trust/reservations.ts). */
  reservations?: Reservations;
  /** Result of the last apply, for Programmed. */
  applyError?: string;
  /**
   * Whether the running DaemonSet's pods share their ports (SHARE_PORTS_LABEL): only then may a
   * rollout start the new pod beside the old one on the same node (maxSurge).
   */
  runningPodsSharePorts?: boolean;
  /** ExposedServices whose claims this gateway accepted. */
  attachedServices?: number;
  /** Each replica's sessions and routes as last read (sessions/); undefined: not read yet. */
  proxies?: readonly ProxyReplicaStatus[];
  /** spec.tls's certificate as the reconciler read and checked it; undefined without spec.tls. */
  certificate?: InspectedCertificate;
  /** spec.acme: the certificates obtained (valid now, for names still wanted), failures, names past the bounds. */
  acme?: {
    certificates: readonly AcmeCertificate[];
    failures: readonly AcmeFailureStatus[];
    omitted: readonly string[];
  };
  now: Date;
}

/** What the Gateway reconciler applies: typed as the API server's own objects. */
export type GatewayObject = V1ConfigMap | V1Secret | V1DaemonSet | V1Deployment;

export interface GatewayDesired {
  /** Problems only the controller can see; non-empty means Accepted=False and nothing applied. */
  invalid: string[];
  objects: GatewayObject[];
  status: GatewayStatus;
}

export function validateGateway(gw: Gateway): string[] {
  const problems: string[] = [];
  if (gw.metadata.name.length > 52)
    problems.push('metadata.name must be at most 52 characters (it names the proxy workload and its labels)');
  return problems;
}

/** The gateway's own config file, as the proxy pods read it. */
export function gatewayConfig(gw: Gateway): Record<string, unknown> {
  const l = gw.spec.listeners;
  return {
    name: gw.metadata.name,
    // Relative to the config file's folder (CONFIG_DIR), where the Secret is mounted as tls/.
    tunnel: {
      address: '0.0.0.0',
      port: l.tunnel.port,
      caFile: 'tls/ca.crt',
      certFile: 'tls/tls.crt',
      keyFile: 'tls/tls.key',
      authorizedAgentsFile: ADMITTED_AGENTS_FILE,
    },
    listeners: {
      ...(l.http ? { http: { address: '0.0.0.0', port: l.http.port } } : {}),
      ...(l.https ? { https: { address: '0.0.0.0', port: l.https.port, certificatesDir: 'certs' } } : {}),
      ...(l.tcp ? { tcp: { address: '0.0.0.0', portRange: l.tcp.portRange } } : {}),
    },
    // Bound to loopback: with host networking anything else would publish metrics on the edge.
    admin: { address: '127.0.0.1', port: ADMIN_PORT },
    // A rollout starts the new pod beside the old one (same node, same ports); clients that reach
    // the new one before the agents do wait for them (proxy/config.ts).
    sharePorts: true,
    readyFile: 'run/ready',
    limits: {
      agentWaitMs: HANDOVER_AGENT_WAIT_MS,
      warmupMs: HANDOVER_WARMUP_MS,
      ...(gw.spec.limits?.maxStreamsPerAgent ? { maxStreamsPerAgent: gw.spec.limits.maxStreamsPerAgent } : {}),
      ...(gw.spec.limits?.maxHeaderBytes ? { maxHeaderBytes: gw.spec.limits.maxHeaderBytes } : {}),
      maxSessionsPerIdentity: gw.spec.limits?.maxSessionsPerService ?? gatewayLimitDefaults.maxSessionsPerService,
    },
  };
}

/** Pod template label: this pod's gateway binds with SO_REUSEPORT (config sharePorts). */
export const SHARE_PORTS_LABEL = 'webgw.io/share-ports';
const HANDOVER_AGENT_WAIT_MS = 5000;
const HANDOVER_WARMUP_MS = 10_000;

const base64 = (text: string): string => Buffer.from(text).toString('base64');

function hash(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 16);
}

function podTemplate(gw: Gateway, inputs: GatewayInputs, configYaml: string): V1PodTemplateSpec {
  const names = gatewayObjectNames(gw.metadata.name);
  const labels = {
    [GATEWAY_LABEL]: gw.metadata.name,
    [COMPONENT_LABEL]: 'gateway',
    [SHARE_PORTS_LABEL]: 'true',
    'app.kubernetes.io/name': 'webgw',
  };
  const probe = (path: string, periodSeconds: number): V1Probe => ({
    httpGet: { host: '127.0.0.1', port: ADMIN_PORT, path },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold: 3,
  });
  const replicas = gw.spec.placement.replicas;
  return {
    metadata: {
      labels,
      // A new config or certificate rolls the pods (the proxy also reloads certificates itself).
      annotations: { 'webgw.io/config-hash': hash(configYaml, inputs.credentials.certPem, inputs.credentials.caPem) },
    },
    spec: {
      hostNetwork: true,
      dnsPolicy: 'ClusterFirstWithHostNet',
      // The edge holds no Kubernetes credentials at all (docs/architecture.md, Trust model).
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      ...(gw.spec.placement.nodeSelector ? { nodeSelector: gw.spec.placement.nodeSelector } : {}),
      ...(gw.spec.placement.tolerations ? { tolerations: gw.spec.placement.tolerations } : {}),
      ...(replicas !== undefined
        ? {
            // Host ports: two replicas can never share a node.
            affinity: {
              podAntiAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: [
                  {
                    labelSelector: { matchLabels: { [GATEWAY_LABEL]: gw.metadata.name } },
                    topologyKey: 'kubernetes.io/hostname',
                  },
                ],
              },
            },
          }
        : {}),
      securityContext: PROXY_POD_SECURITY,
      terminationGracePeriodSeconds: 30,
      containers: [
        {
          name: 'gateway',
          image: inputs.image,
          command: GATEWAY_COMMAND,
          args: ['gateway', '--config', `${CONFIG_DIR}/gateway.yaml`],
          securityContext: PROXY_CONTAINER_SECURITY,
          // This process's own readiness: the admin port is shared with the pod it replaces.
          readinessProbe: {
            exec: { command: ['/bin/cat', READY_FILE] },
            periodSeconds: 2,
            timeoutSeconds: 2,
            failureThreshold: 2,
          },
          livenessProbe: probe('/healthz', 10),
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
          volumeMounts: [
            { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
            { name: 'tunnel-tls', mountPath: TLS_DIR, readOnly: true },
            { name: 'state', mountPath: STATE_DIR },
            ...(gw.spec.listeners.https ? [{ name: 'certificates', mountPath: CERTS_DIR, readOnly: true }] : []),
          ],
        },
      ],
      volumes: [
        { name: 'config', configMap: { name: names.config } },
        { name: 'tunnel-tls', secret: { secretName: names.tunnelSecret, defaultMode: 0o440 } },
        // One small file; a real kubelet evicts a pod whose emptyDir passes its sizeLimit.
        { name: 'state', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
        // Renewed in place (the proxy reloads the folder): not part of the template's hash.
        ...(gw.spec.listeners.https
          ? [{ name: 'certificates', secret: { secretName: names.certificatesSecret, defaultMode: 0o440 } }]
          : []),
      ],
    },
  };
}

/** The proxy pod's identity: never root. */
/** fsGroup: the kubelet writes Secret volumes root-owned; the 0440 files are readable through it (issue 13). */
export const PROXY_POD_SECURITY: V1PodSecurityContext = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  fsGroup: 65532,
  seccompProfile: { type: 'RuntimeDefault' },
};

/**
 * The proxy container: no privilege escalation, read-only root filesystem, no capability but
 * NET_BIND_SERVICE for ports below 1024 (80, 443): GATEWAY_COMMAND's node carries it as a file
 * capability, and the kernel runs that binary only when the capability is in the bounding set.
 * test/e2e/gateway-privileges.test.ts runs the gateway under exactly these settings.
 */
export const PROXY_CONTAINER_SECURITY: V1SecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] },
};

/**
 * Pods that share their ports roll with the new pod started first (maxSurge: the old one drains
 * once the new one is Ready, and no request is lost); pods from before sharePorts cannot share,
 * so their node's gateway is replaced one node at a time, with a short gap (issue 13).
 */
function daemonSetUpdate(runningPodsSharePorts: boolean): V1DaemonSetUpdateStrategy {
  return {
    type: 'RollingUpdate',
    rollingUpdate: runningPodsSharePorts ? { maxSurge: 1, maxUnavailable: 0 } : { maxSurge: 0, maxUnavailable: 1 },
  };
}

/** What the controller applies for a Gateway: none while only it can tell the Gateway is invalid. */
export function desiredGatewayObjects(inputs: GatewayInputs): { invalid: string[]; objects: GatewayObject[] } {
  const gw = inputs.gateway;
  const names = gatewayObjectNames(gw.metadata.name);
  const invalid = validateGateway(gw);
  if (invalid.length > 0) return { invalid, objects: [] };
  const configYaml = stringify(gatewayConfig(gw));
  const meta = (name: string): V1ObjectMeta => ({
    name,
    namespace: inputs.namespace,
    labels: {
      [GATEWAY_LABEL]: gw.metadata.name,
      'app.kubernetes.io/name': 'webgw',
      'app.kubernetes.io/managed-by': 'webgw',
    },
    ownerReferences: [controllerReference({ kind: 'Gateway', name: gw.metadata.name, uid: gw.metadata.uid })],
  });
  const selector = { matchLabels: { [GATEWAY_LABEL]: gw.metadata.name, [COMPONENT_LABEL]: 'gateway' } };
  const template = podTemplate(gw, inputs, configYaml);
  const replicas = gw.spec.placement.replicas;
  const workload: GatewayObject =
    replicas === undefined
      ? {
          apiVersion: 'apps/v1',
          kind: 'DaemonSet',
          metadata: meta(names.workload),
          spec: { selector, template, updateStrategy: daemonSetUpdate(inputs.runningPodsSharePorts ?? true) },
        }
      : {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: meta(names.workload),
          spec: {
            replicas,
            selector,
            template,
            strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
          },
        };
  const objects: GatewayObject[] = [
    // The admission list changes whenever a tenant's credential does; the proxy reloads it
    // without a rollout (it is not part of the pod template hash).
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(names.config),
      data: { 'gateway.yaml': configYaml, [ADMITTED_AGENTS_FILE]: renderAuthorizedAgents(inputs.admittedAgents) },
    },
    // The CA key never leaves the controller's namespace: the edge gets only the CA certificate.
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: meta(names.tunnelSecret),
      type: 'kubernetes.io/tls',
      stringData: {
        'tls.crt': inputs.credentials.certPem,
        'tls.key': inputs.credentials.keyPem,
        'ca.crt': inputs.credentials.caPem,
      },
    },
    // The certificates HTTPS is terminated with: the farmer's for the domain once it checks out.
    // `data`, not stringData: a server-side apply removes the keys it no longer names only from
    // data (a certificate that stopped checking out must leave the edge).
    ...(gw.spec.listeners.https
      ? [
          {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: meta(names.certificatesSecret),
            type: 'Opaque',
            data: servedCertificates(inputs),
          },
        ]
      : []),
    workload,
    // Hostname reservations: the controller's own record, in its own namespace (never the edge's).
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        ...meta(reservationsName(gw.metadata.name)),
        labels: { ...meta('').labels, [COMPONENT_LABEL]: 'reservations' },
      },
      data: { [RESERVATIONS_KEY]: renderReservations(inputs.reservations ?? new Map()) },
    },
  ];
  return { invalid, objects };
}

/**
 * The proxies' certificates Secret: the farmer's for the domain once it checks out, and one pair
 * per ACME hostname (`acme-<secret suffix>`); the proxy picks by SNI (proxy/certificate-store.ts).
 */
function servedCertificates(inputs: GatewayInputs): Record<string, string> {
  const data: Record<string, string> = {};
  if (inputs.certificate?.ready) {
    data[`${DOMAIN_CERTIFICATE}.crt`] = base64(inputs.certificate.certPem);
    data[`${DOMAIN_CERTIFICATE}.key`] = base64(inputs.certificate.keyPem);
  }
  for (const c of inputs.acme?.certificates ?? []) {
    const file = `acme-${c.secretName.slice(c.secretName.lastIndexOf('-') + 1)}`;
    data[`${file}.crt`] = base64(c.certPem);
    data[`${file}.key`] = base64(c.keyPem);
  }
  return data;
}
