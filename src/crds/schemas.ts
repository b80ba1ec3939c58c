/**
 * The CustomResourceDefinitions of webgw.io/v1alpha1: structural OpenAPI v3 schemas with
 * defaults, enums and bounds, CEL rules for the cross-field invariants, status subresource,
 * printer columns and the `webgw` category. The single source for deploy/crds and the chart
 * (controller/manifests.ts); a test fails when the generated files drift.
 */
import { GROUP, VERSION } from './types.ts';

type Schema = Record<string, unknown>;

const HOSTNAME = '^(\\*\\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$';
const DNS_LABEL = '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$';

const str = (extra: Schema = {}): Schema => ({ type: 'string', maxLength: 253, ...extra });
const int = (minimum: number, maximum: number, extra: Schema = {}): Schema => ({
  type: 'integer',
  format: 'int32',
  minimum,
  maximum,
  ...extra,
});
const port = (extra: Schema = {}): Schema => int(1, 65535, extra);
const obj = (properties: Record<string, Schema>, extra: Schema = {}): Schema => ({
  type: 'object',
  properties,
  ...extra,
});
const arr = (items: Schema, maxItems: number, extra: Schema = {}): Schema => ({
  type: 'array',
  items,
  maxItems,
  ...extra,
});
const stringMap = (maxProperties = 64): Schema => ({
  type: 'object',
  additionalProperties: str({ maxLength: 63 }),
  maxProperties,
});
const rule = (r: string, message: string, extra: Schema = {}): Schema => ({ rule: r, message, ...extra });

const labelSelector: Schema = obj(
  {
    matchLabels: stringMap(),
    matchExpressions: arr(
      obj(
        {
          key: str({ maxLength: 317 }),
          operator: { type: 'string', enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] },
          values: arr(str({ maxLength: 63 }), 64),
        },
        { required: ['key', 'operator'] },
      ),
      32,
    ),
  },
  { 'x-kubernetes-map-type': 'atomic' },
);

const condition: Schema = obj(
  {
    type: str({ maxLength: 316 }),
    status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
    reason: str({ maxLength: 1024 }),
    message: str({ maxLength: 32768 }),
    observedGeneration: { type: 'integer', format: 'int64', minimum: 0 },
    lastTransitionTime: { type: 'string', format: 'date-time' },
  },
  { required: ['type', 'status', 'reason', 'message', 'lastTransitionTime'] },
);

const conditions: Schema = arr(condition, 16, {
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
});

const toleration: Schema = obj({
  key: str({ maxLength: 317 }),
  operator: { type: 'string', enum: ['Equal', 'Exists'] },
  value: str({ maxLength: 63 }),
  effect: { type: 'string', enum: ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] },
  tolerationSeconds: { type: 'integer', format: 'int64' },
});

export const gatewaySchema: Schema = obj(
  {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    metadata: { type: 'object' },
    spec: obj(
      {
        domain: str({
          pattern: HOSTNAME,
          description:
            "Names <subdomain>.<domain> are served here, TLS-terminated with the farmer's wildcard certificate (spec.tls).",
        }),
        placement: obj(
          {
            nodeSelector: stringMap(),
            tolerations: arr(toleration, 32),
            replicas: int(1, 100, {
              description:
                'Omitted: one proxy pod on every matching node (DaemonSet). Set: a Deployment spread across nodes.',
            }),
          },
          { description: "Where proxy pods run: the farmer nodes (host network, so the nodes' public IPs serve)." },
        ),
        listeners: obj(
          {
            http: obj({ port: port({ default: 80 }) }),
            https: obj({ port: port({ default: 443 }) }),
            tcp: obj(
              {
                portRange: obj(
                  { from: port(), to: port() },
                  {
                    required: ['from', 'to'],
                    'x-kubernetes-validations': [
                      rule('self.from <= self.to', 'portRange.from must not be above portRange.to'),
                      rule('self.to - self.from < 10000', 'portRange may span at most 10000 ports'),
                    ],
                  },
                ),
              },
              { required: ['portRange'] },
            ),
            tunnel: obj({ port: port({ default: 8443 }) }, { default: {} }),
          },
          {
            default: { tunnel: {} },
            'x-kubernetes-validations': [
              rule(
                '!has(self.http) || !has(self.https) || self.http.port != self.https.port',
                'http and https listeners need different ports',
              ),
              rule(
                '!has(self.http) || self.http.port != self.tunnel.port',
                'http and tunnel listeners need different ports',
              ),
              rule(
                '!has(self.https) || self.https.port != self.tunnel.port',
                'https and tunnel listeners need different ports',
              ),
              rule(
                '!has(self.tcp) || self.tunnel.port < self.tcp.portRange.from || self.tunnel.port > self.tcp.portRange.to',
                'the tunnel port must be outside the tcp portRange',
              ),
              rule(
                '!has(self.tcp) || !has(self.http) || self.http.port < self.tcp.portRange.from || self.http.port > self.tcp.portRange.to',
                'the http port must be outside the tcp portRange',
              ),
              rule(
                '!has(self.tcp) || !has(self.https) || self.https.port < self.tcp.portRange.from || self.https.port > self.tcp.portRange.to',
                'the https port must be outside the tcp portRange',
              ),
            ],
          },
        ),
        tls: obj(
          {
            certificateRef: obj(
              { name: str({ pattern: DNS_LABEL }), namespace: str({ pattern: DNS_LABEL, maxLength: 63 }) },
              { required: ['name', 'namespace'] },
            ),
          },
          { required: ['certificateRef'] },
        ),
        acme: obj(
          {
            directoryUrl: str({
              maxLength: 2048,
              pattern: '^https://',
              description: "The ACME directory (Let's Encrypt, its staging, ZeroSSL, a private step-ca...).",
            }),
            email: str({
              maxLength: 254,
              pattern: '^[^@\\s]+@[^@\\s]+$',
              description: 'Contact for the ACME account (expiry and policy notices).',
            }),
          },
          {
            required: ['directoryUrl'],
            description:
              "HTTPS for tenants' own hostnames: the controller orders a certificate per name through ACME HTTP-01, answered by the proxies on the http listener, and renews it at two thirds of its life. Needs listeners.http (port 80 for public CAs) and listeners.https.",
          },
        ),
        allowedNamespaces: obj(
          { selector: labelSelector },
          { description: 'Namespaces whose ExposedServices may attach. Omitted: every namespace.' },
        ),
        hostnamePolicy: obj(
          {
            wildcards: {
              type: 'string',
              enum: ['Allowed', 'Forbidden'],
              default: 'Forbidden',
              description: 'Whether tenants may claim *.name hostnames (never *.<domain> or above it).',
            },
            external: {
              type: 'string',
              enum: ['Allowed', 'Verified', 'Forbidden'],
              default: 'Verified',
              description:
                'Hostnames outside spec.domain: Verified (only a namespace that published the TXT record _webgw-challenge.<name> its ExposedService names), Allowed (the oldest claim wins), Forbidden. Names under spec.domain are single labels.',
            },
            trustedNamespaces: obj(
              { selector: labelSelector },
              {
                description:
                  "Namespaces that may claim names outside spec.domain without proof (the farmer's own, say).",
              },
            ),
          },
          { description: 'Which hostnames tenants may claim on this Gateway.' },
        ),
        limits: obj({
          maxStreamsPerAgent: int(1, 100000, { default: 10000 }),
          maxHeaderBytes: int(1024, 1048576, { default: 16384 }),
          maxSessionsPerService: int(1, 100000, {
            default: 64,
            description: 'Tunnel sessions one ExposedService may hold on each proxy replica (one per agent).',
          }),
          maxServicesPerNamespace: int(1, 100000, {
            default: 100,
            description: 'ExposedServices of one namespace this Gateway serves; the oldest are served first.',
          }),
          maxTcpPortsPerNamespace: int(0, 10000, {
            default: 10,
            description: 'TCP ports one namespace may hold from spec.listeners.tcp.portRange.',
          }),
        }),
      },
      {
        required: ['placement', 'listeners'],
        'x-kubernetes-validations': [
          rule('!has(self.tls) || has(self.domain)', 'tls needs a domain: the certificate serves <subdomain>.<domain>'),
          rule(
            '!has(self.acme) || (has(self.listeners.http) && has(self.listeners.https))',
            'acme needs listeners.http (HTTP-01 is answered there) and listeners.https (where the certificates serve)',
          ),
        ],
      },
    ),
    status: obj({
      observedGeneration: { type: 'integer', format: 'int64' },
      conditions,
      certificate: obj(
        {
          secret: str(),
          names: arr(str(), 100),
          notAfter: str(),
          issuer: str({ maxLength: 1024 }),
        },
        { description: 'The certificate HTTPS is terminated with for names under spec.domain (spec.tls).' },
      ),
      acme: obj(
        {
          certificates: arr(
            obj(
              { hostname: str(), notAfter: str(), renewAt: str(), issuer: str({ maxLength: 1024 }) },
              { required: ['hostname', 'notAfter', 'renewAt', 'issuer'] },
            ),
            1000,
          ),
          failures: arr(
            obj(
              { hostname: str(), problem: str({ maxLength: 1024 }), attempts: int(1, 1000000), retryAt: str() },
              { required: ['hostname', 'problem', 'attempts', 'retryAt'] },
            ),
            1000,
          ),
          omitted: arr(str(), 1000),
        },
        {
          description:
            'spec.acme: the certificates obtained per hostname, the orders that failed and when they are retried.',
        },
      ),
      addresses: arr(
        obj(
          { type: { type: 'string', enum: ['IPAddress', 'Hostname'] }, value: str() },
          { required: ['type', 'value'] },
        ),
        64,
      ),
      tunnelEndpoints: arr(str(), 100),
      replicas: obj({ desired: int(0, 100000), ready: int(0, 100000) }),
      attachedServices: int(0, 1000000),
      sessions: int(0, 100000000),
      proxies: arr(
        obj(
          {
            name: str(),
            address: str(),
            reachable: { type: 'boolean' },
            sessions: int(0, 10000000),
            routes: int(0, 10000000),
            message: str({ maxLength: 256 }),
          },
          { required: ['name', 'reachable', 'sessions', 'routes'] },
        ),
        1000,
      ),
    }),
  },
  { required: ['spec'] },
);

const route: Schema = obj(
  {
    protocol: { type: 'string', enum: ['HTTP', 'TLS', 'TCP'] },
    hostnames: arr(str({ pattern: HOSTNAME }), 16),
    subdomain: str({
      pattern: DNS_LABEL,
      maxLength: 63,
      description: 'Served as <subdomain>.<gateway domain> on gateways that have a domain.',
    }),
    termination: {
      type: 'string',
      enum: ['Passthrough', 'Terminate', 'Agent'],
      description:
        'TLS only. Omitted: Passthrough (the gateway never sees plaintext; the backend terminates TLS). Terminate: the gateway terminates TLS with its certificate (spec.tls of the Gateway, names under its domain, or spec.acme) and relays the plaintext. Agent: the gateway passes TLS through and the agent beside the workload terminates it, with a certificate the controller orders through ACME TLS-ALPN-01 (the Gateway needs spec.acme; the key stays in this namespace) and relays the plaintext to the backend.',
    },
    redirect: {
      type: 'boolean',
      description:
        'HTTP only. Where the gateway serves the name over HTTPS (its certificate covers it): true (default) answers plain HTTP with a redirect to HTTPS, false serves plain HTTP too.',
    },
    backendProtocol: {
      type: 'string',
      enum: ['HTTP1', 'H2C'],
      description:
        'What the backend speaks. HTTP routes: HTTP1 (default) gets HTTP/1.1; H2C gets HTTP/2 without TLS (prior knowledge), as gRPC servers need; clients may use HTTP/1.1 or HTTP/2 either way. TLS routes with termination: Agent: the agent offers clients ALPN http/1.1 (HTTP1) or h2 (H2C, then the decrypted HTTP/2 goes to the backend as is); omitted, no ALPN.',
    },
    backend: obj({ port: port() }, { required: ['port'], description: 'Overrides spec.backend.port for this route.' }),
  },
  {
    required: ['protocol'],
    'x-kubernetes-validations': [
      rule(
        "self.protocol == 'TCP' || has(self.hostnames) || has(self.subdomain)",
        'HTTP and TLS routes need hostnames or a subdomain',
      ),
      rule(
        "self.protocol != 'TCP' || (!has(self.hostnames) && !has(self.subdomain))",
        'TCP routes are served on an allocated port and take no hostnames',
      ),
      rule("!has(self.termination) || self.protocol == 'TLS'", 'termination applies to TLS routes only'),
      rule("!has(self.redirect) || self.protocol == 'HTTP'", 'redirect applies to HTTP routes only'),
      rule(
        "!has(self.backendProtocol) || self.protocol == 'HTTP' || (self.protocol == 'TLS' && has(self.termination) && self.termination == 'Agent')",
        'backendProtocol applies to HTTP routes and to TLS routes the agent terminates',
      ),
    ],
  },
);

export const exposedServiceSchema: Schema = obj(
  {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    metadata: { type: 'object' },
    spec: obj(
      {
        gateways: arr(obj({ name: str({ pattern: DNS_LABEL, maxLength: 63 }) }, { required: ['name'] }), 16, {
          minItems: 1,
        }),
        gatewaySelector: labelSelector,
        mode: { type: 'string', enum: ['Sidecar', 'Connector'], default: 'Sidecar' },
        selector: stringMap(32),
        backend: obj({ port: port(), service: str({ pattern: DNS_LABEL, maxLength: 63 }) }, { required: ['port'] }),
        routes: arr(route, 64, { minItems: 1 }),
        proxyProtocol: { type: 'string', enum: ['None', 'V1', 'V2'], default: 'None' },
      },
      {
        required: ['backend', 'routes'],
        'x-kubernetes-validations': [
          rule('has(self.gateways) != has(self.gatewaySelector)', 'give exactly one of gateways and gatewaySelector'),
          rule(
            "self.mode != 'Sidecar' || (has(self.selector) && size(self.selector) > 0)",
            'Sidecar mode needs a selector for the pods that get the agent',
          ),
          rule("self.mode != 'Connector' || has(self.backend.service)", 'Connector mode needs backend.service'),
        ],
      },
    ),
    status: obj({
      observedGeneration: { type: 'integer', format: 'int64' },
      conditions,
      endpoints: arr(
        obj(
          {
            gateway: str(),
            urls: arr(str({ maxLength: 2048 }), 64),
            // address is absent until the gateway reports one; the port is allocated (and kept) anyway.
            tcp: arr(
              obj({ address: str(), port: port(), backendPort: port() }, { required: ['port', 'backendPort'] }),
              64,
            ),
            certificates: arr(
              obj(
                {
                  names: arr(str(), 64),
                  state: { type: 'string', enum: ['Ready', 'Pending', 'Failed'] },
                  source: { type: 'string', enum: ['Gateway', 'ACME'] },
                  terminatedBy: { type: 'string', enum: ['Gateway', 'Agent'] },
                  attempts: int(0, 1000000),
                  retryAt: str({ format: 'date-time' }),
                  issuer: str({ maxLength: 1024 }),
                  notAfter: str(),
                  message: str({ maxLength: 1024 }),
                },
                { required: ['names', 'state', 'source'] },
              ),
              64,
              {
                description:
                  "The certificates this service's HTTPS names are served with: its Gateway's spec.tls one, or one per name through spec.acme (Pending while ordered, Failed with the ACME problem); terminatedBy Agent for TLS routes the agents terminate (termination: Agent).",
              },
            ),
            sessions: int(0, 10000000, {
              description: 'Agent sessions of this service connected to the gateway, over its replicas.',
            }),
            replicas: arr(
              obj(
                {
                  name: str(),
                  sessions: int(0, 10000000),
                  since: str({ format: 'date-time' }),
                  rttMilliseconds: int(0, 3600000),
                  reachable: { type: 'boolean' },
                },
                { required: ['name', 'sessions', 'reachable'] },
              ),
              1000,
            ),
          },
          { required: ['gateway'] },
        ),
        16,
      ),
      connectedGateways: str({
        maxLength: 16,
        description: 'connected/accepted: accepted gateways with at least one agent session of this service.',
      }),
    }),
  },
  { required: ['spec'] },
);

interface CrdSpec {
  plural: string;
  singular: string;
  kind: string;
  shortName: string;
  scope: 'Cluster' | 'Namespaced';
  schema: Schema;
  columns: Array<{ name: string; type: string; jsonPath: string; priority?: number; description?: string }>;
}

function crd(spec: CrdSpec): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${spec.plural}.${GROUP}`, labels: { 'app.kubernetes.io/part-of': 'webgw' } },
    spec: {
      group: GROUP,
      scope: spec.scope,
      names: {
        plural: spec.plural,
        singular: spec.singular,
        kind: spec.kind,
        listKind: `${spec.kind}List`,
        shortNames: [spec.shortName],
        categories: ['webgw'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: spec.columns,
          schema: { openAPIV3Schema: spec.schema },
        },
      ],
    },
  };
}

const readyColumn = { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' };
const ageColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

export const gatewayCrd = crd({
  plural: 'gateways',
  singular: 'gateway',
  kind: 'Gateway',
  shortName: 'wgw',
  scope: 'Cluster',
  schema: gatewaySchema,
  columns: [
    readyColumn,
    { name: 'Addresses', type: 'string', jsonPath: '.status.addresses[*].value' },
    { name: 'Services', type: 'integer', jsonPath: '.status.attachedServices' },
    { name: 'Sessions', type: 'integer', jsonPath: '.status.sessions' },
    { name: 'Domain', type: 'string', jsonPath: '.spec.domain', priority: 1 },
    ageColumn,
  ],
});

export const exposedServiceCrd = crd({
  plural: 'exposedservices',
  singular: 'exposedservice',
  kind: 'ExposedService',
  shortName: 'xsvc',
  scope: 'Namespaced',
  schema: exposedServiceSchema,
  columns: [
    readyColumn,
    {
      name: 'Connected',
      type: 'string',
      jsonPath: '.status.connectedGateways',
      description: 'Accepted gateways with an agent session of this service',
    },
    { name: 'URLs', type: 'string', jsonPath: '.status.endpoints[*].urls[*]' },
    { name: 'Mode', type: 'string', jsonPath: '.spec.mode', priority: 1 },
    ageColumn,
  ],
});

export const allCrds = [gatewayCrd, exposedServiceCrd];
