/** TypeScript shapes of the webgw.io/v1alpha1 resources (the schemas in schemas.ts are the contract). */
import type { Condition } from './conditions.ts';

export const GROUP = 'webgw.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }>;
}

export interface Toleration {
  key?: string;
  operator?: 'Equal' | 'Exists';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  tolerationSeconds?: number;
}

export interface GatewaySpec {
  domain?: string;
  placement: { nodeSelector?: Record<string, string>; tolerations?: Toleration[]; replicas?: number };
  listeners: {
    http?: { port: number };
    https?: { port: number };
    tcp?: { portRange: { from: number; to: number } };
    tunnel: { port: number };
  };
  tls?: { certificateRef: { name: string; namespace: string } };
  /**
   * Certificates for tenants' own hostnames (outside spec.domain), ordered by the controller from
   * an ACME server (RFC 8555) with HTTP-01 answered by this Gateway's proxies.
   */
  acme?: { directoryUrl: string; email?: string };
  allowedNamespaces?: { selector?: LabelSelector };
  hostnamePolicy?: {
    wildcards?: 'Allowed' | 'Forbidden';
    external?: 'Allowed' | 'Verified' | 'Forbidden';
    trustedNamespaces?: { selector?: LabelSelector };
  };
  limits?: {
    maxStreamsPerAgent?: number;
    maxHeaderBytes?: number;
    maxSessionsPerService?: number;
    maxServicesPerNamespace?: number;
    maxTcpPortsPerNamespace?: number;
  };
}

/** Defaults of Gateway.spec.hostnamePolicy: proof of control for names outside the domain. */
export const hostnamePolicyDefaults = { wildcards: 'Forbidden', external: 'Verified' } as const;

/** Defaults of Gateway.spec.limits (the schema's too, for objects written before they existed). */
export const gatewayLimitDefaults = {
  maxSessionsPerService: 64,
  maxServicesPerNamespace: 100,
  maxTcpPortsPerNamespace: 10,
} as const;

/** The certificate the gateway terminates HTTPS with for its domain (spec.tls). */
export interface GatewayCertificateStatus {
  /** `namespace/name` of the Secret it came from. */
  secret: string;
  names: string[];
  notAfter: string;
  issuer: string;
}

/** A certificate the controller obtained through ACME for one hostname (spec.acme). */
export interface AcmeCertificateStatus {
  hostname: string;
  notAfter: string;
  /** When the controller orders its successor: two thirds into its life. */
  renewAt: string;
  issuer: string;
}

/** The last failed order for a hostname, and when the next one may be sent (backoff). */
export interface AcmeFailureStatus {
  hostname: string;
  /** The ACME problem (RFC 7807 type and detail) or the transport error. */
  problem: string;
  attempts: number;
  retryAt: string;
}

export interface GatewayAcmeStatus {
  certificates?: AcmeCertificateStatus[];
  failures?: AcmeFailureStatus[];
  /** Hostnames not ordered: beyond the bounds per Gateway and per namespace. */
  omitted?: string[];
}

export interface GatewayStatus {
  observedGeneration?: number;
  certificate?: GatewayCertificateStatus;
  acme?: GatewayAcmeStatus;
  conditions?: Condition[];
  addresses?: Array<{ type: 'IPAddress' | 'Hostname'; value: string }>;
  tunnelEndpoints?: string[];
  replicas?: { desired: number; ready: number };
  /** ExposedServices whose claims this gateway accepted. */
  attachedServices?: number;
  /** Agent sessions over every replica, as last read from them. */
  sessions?: number;
  /** Per proxy replica: whether the controller could read it, its sessions and routes. */
  proxies?: Array<{
    name: string;
    address: string;
    reachable: boolean;
    sessions: number;
    routes: number;
    message?: string;
  }>;
}

export interface Gateway {
  apiVersion: typeof API_VERSION;
  kind: 'Gateway';
  metadata: ObjectMeta;
  spec: GatewaySpec;
  status?: GatewayStatus;
}

export type RouteProtocolName = 'HTTP' | 'TLS' | 'TCP';

export interface ExposedServiceRoute {
  protocol: RouteProtocolName;
  hostnames?: string[];
  subdomain?: string;
  termination?: 'Passthrough' | 'Terminate' | 'Agent';
  /**
   * HTTP only, on gateways that terminate HTTPS for the name: plain HTTP answers 308 to HTTPS
   * (true, the default) or is served too (false).
   */
  redirect?: boolean;
  /**
   * HTTP only: what the backend speaks. HTTP1 (the default) gets HTTP/1.1; H2C gets HTTP/2
   * without TLS (prior knowledge), which gRPC needs end to end. Clients may use either version.
   */
  backendProtocol?: 'HTTP1' | 'H2C';
  backend?: { port: number };
}

export interface ExposedServiceSpec {
  gateways?: Array<{ name: string }>;
  gatewaySelector?: LabelSelector;
  mode: 'Sidecar' | 'Connector';
  selector?: Record<string, string>;
  backend: { port: number; service?: string };
  routes: ExposedServiceRoute[];
  proxyProtocol: 'None' | 'V1' | 'V2';
}

/** A certificate as a tenant sees it: Ready (served), Pending (being ordered) or Failed (why). */
export interface EndpointCertificateStatus {
  names: string[];
  state: 'Ready' | 'Pending' | 'Failed';
  source: 'Gateway' | 'ACME';
  /** Agent: a TLS route the agents terminate (termination: Agent); absent: the gateway does. */
  terminatedBy?: 'Gateway' | 'Agent';
  /** Agent-terminated names whose last order failed: how often, and when it is tried again. */
  attempts?: number;
  retryAt?: string;
  issuer?: string;
  notAfter?: string;
  message?: string;
}

/** One gateway replica as an ExposedService sees it: its agents' sessions there. */
export interface ReplicaSessionsStatus {
  name: string;
  sessions: number;
  since?: string;
  rttMilliseconds?: number;
  reachable: boolean;
}

export interface ExposedServiceStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  /** `connected/accepted` gateways: how many of the accepted gateways have an agent session. */
  connectedGateways?: string;
  endpoints?: Array<{
    gateway: string;
    urls?: string[];
    tcp?: Array<{ address?: string; port: number; backendPort: number }>;
    /** The certificates the gateway terminates this service's HTTPS names with, or is ordering. */
    certificates?: EndpointCertificateStatus[];
    /** Agent sessions of this service on the gateway, over its replicas. */
    sessions?: number;
    replicas?: ReplicaSessionsStatus[];
  }>;
}

export interface ExposedService {
  apiVersion: typeof API_VERSION;
  kind: 'ExposedService';
  metadata: ObjectMeta;
  spec: ExposedServiceSpec;
  status?: ExposedServiceStatus;
}
