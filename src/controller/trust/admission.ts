/**
 * The controller's trust decisions in one place (docs/architecture.md, Trust model; issue 12): which grants an
 * ExposedService holds on a Gateway, whether a certificate carries exactly them, and which
 * certificates a Gateway admits. Authority comes only from the controller's own state, the claims
 * plan over every Gateway and ExposedService; a Secret in a tenant's namespace is a cache of a
 * certificate, believed only when it proves itself against the plan (issued by the Gateway's CA,
 * for this very ExposedService's identity, with exactly the planned grants). When the issuer of
 * credentials moves out of the cluster, this module is what moves with it.
 */
import { X509Certificate } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import type { ExposedService } from '../../crds/types.ts';
import { grantsFromUris, parseSubjectAltName, type GrantSet } from '../../pki/grants.ts';
import { issuedBy } from '../../pki/verify.ts';
import { secretText } from '../runtime/apply.ts';
import { isControlledBy } from '../runtime/ownership.ts';
import type { GatewayPlan, ServicePlan } from '../exposedservice/claims.ts';
import { oldestFirst, planHostnames, serviceKey } from '../exposedservice/claims.ts';

/**
 * Serials a gateway's list may hold: ~33 bytes each, so the list stays well inside a ConfigMap's
 * 1 MiB with room for the config beside it. Per-namespace quotas (claims.ts) keep one tenant
 * from filling it; past it, the oldest services keep their place.
 */
export const MAX_ADMITTED_AGENTS = 25_000;

/** `namespace/name/uid`: the identity every grant of an ExposedService carries. */
export function serviceIdentity(service: ExposedService): string {
  return `${service.metadata.namespace}/${service.metadata.name}/${service.metadata.uid}`;
}

/** The grants an ExposedService holds on one gateway: exactly what the plan accepted. */
export function plannedGrants(service: ExposedService, gp: GatewayPlan): GrantSet {
  return {
    http: gp.http,
    https: gp.https,
    tls: gp.tls,
    tlsTerminated: gp.tlsTerminated,
    tcp: gp.tcp.map((t) => t.port),
    h2c: gp.h2c,
    identity: serviceIdentity(service),
  };
}

export function grantsServe(gp: GatewayPlan): boolean {
  return gp.accepted && planHostnames(gp).length + gp.tcp.length > 0;
}

const sorted = (g: GrantSet): string =>
  JSON.stringify([
    g.identity,
    [...g.http].sort(),
    [...g.https].sort(),
    [...g.tls].sort(),
    [...g.tlsTerminated].sort(),
    [...g.tcp].sort((a, b) => a - b),
    [...g.h2c].sort(),
  ]);

/** What a credential certificate says, parsed once (issue 15: re-parsing and re-verifying every
 * certificate on every Gateway reconcile was 40 % of the controller's CPU at 1,000 services). */
interface CertificateFacts {
  cert: X509Certificate;
  serial: string;
  /** Its grants in canonical form; undefined when it is a CA or its grants are malformed. */
  grants?: string;
  /** Verdicts per CA certificate (PEM): issued by it and signed with its key. */
  issuedBy: Map<string, boolean>;
}

/** Bounded memo, oldest out first: two gateways × 5,000 services with room for renewals. */
const MAX_REMEMBERED_CERTIFICATES = 20_000;
const remembered = new Map<string, CertificateFacts | null>();
const parsedCAs = new Map<string, X509Certificate | null>();

function remember<V>(map: Map<string, V>, key: string, max: number, make: () => V): V {
  if (map.has(key)) return map.get(key) as V;
  const value = make();
  if (map.size >= max) map.delete(map.keys().next().value as string);
  map.set(key, value);
  return value;
}

function factsOf(certPem: string): CertificateFacts | null {
  return remember(remembered, certPem, MAX_REMEMBERED_CERTIFICATES, () => {
    try {
      const cert = new X509Certificate(certPem);
      let grants: string | undefined;
      try {
        const uris = parseSubjectAltName(cert.subjectAltName)
          .filter((e) => e.type === 'URI')
          .map((e) => e.value);
        grants = cert.ca ? undefined : sorted(grantsFromUris(uris));
      } catch {
        grants = undefined;
      }
      return {
        cert,
        serial: cert.serialNumber.toUpperCase(),
        ...(grants === undefined ? {} : { grants }),
        issuedBy: new Map(),
      };
    } catch {
      return null;
    }
  });
}

/**
 * A credential Secret's certificate for one gateway, decoded once per Secret object (the cache
 * hands out a new object on every change): decoding it on each admission was a third of it.
 */
const decoded = new WeakMap<V1Secret, Map<string, string | undefined>>();
function credentialCertificate(secret: V1Secret, gateway: string): string | undefined {
  let perGateway = decoded.get(secret);
  if (!perGateway) decoded.set(secret, (perGateway = new Map()));
  if (!perGateway.has(gateway)) perGateway.set(gateway, secretText(secret, `${gateway}.crt`));
  return perGateway.get(gateway);
}

function caOf(caPem: string): X509Certificate | null {
  return remember(parsedCAs, caPem, 256, () => {
    try {
      return new X509Certificate(caPem);
    } catch {
      return null;
    }
  });
}

/** True when `certPem` was issued by `caPem` and grants exactly `grants` (identity included). */
export function certificateFits(certPem: string, caPem: string, grants: GrantSet): boolean {
  const facts = factsOf(certPem);
  if (!facts?.grants || facts.grants !== sorted(grants)) return false;
  let issued = facts.issuedBy.get(caPem);
  if (issued === undefined) {
    const ca = caOf(caPem);
    issued = ca !== null && issuedBy(facts.cert, ca);
    facts.issuedBy.set(caPem, issued);
  }
  return issued;
}

export interface AdmissionInputs {
  gateway: string;
  caPem: string;
  /** Every ExposedService, and the plan over all of them (planClaims). */
  services: readonly ExposedService[];
  plans: ReadonlyMap<string, ServicePlan>;
  /** The credential Secret of a service, as cached (namespace, name). */
  credentialOf(service: ExposedService): V1Secret | undefined;
  /** Defaults to MAX_ADMITTED_AGENTS. */
  maxAgents?: number;
}

export interface Admission {
  /** Upper-case hex serials, sorted, each once. */
  serials: string[];
  /** Services left out because the list is full. */
  omitted: number;
}

/**
 * The certificates a gateway admits: for each ExposedService the plan accepts on it, the
 * certificate in that service's own credential Secret, if it fits the plan. Copies elsewhere,
 * Secrets the tenant made itself, certificates of deleted services or with other grants: none
 * count. Oldest services first, so a full list drops the newest.
 */
export function admittedAgents(inputs: AdmissionInputs): Admission {
  const ordered = oldestFirst(inputs.services);
  const serials = new Set<string>();
  let omitted = 0;
  for (const service of ordered) {
    const gp = inputs.plans.get(serviceKey(service))?.gateways.find((g) => g.gateway === inputs.gateway);
    if (!gp || !grantsServe(gp)) continue;
    const secret = inputs.credentialOf(service);
    const owner = { kind: 'ExposedService' as const, name: service.metadata.name, uid: service.metadata.uid };
    if (!secret || !isControlledBy(secret, owner)) continue;
    const certPem = credentialCertificate(secret, inputs.gateway);
    if (!certPem || !certificateFits(certPem, inputs.caPem, plannedGrants(service, gp))) continue;
    if (serials.size >= (inputs.maxAgents ?? MAX_ADMITTED_AGENTS)) {
      omitted++;
      continue;
    }
    serials.add((factsOf(certPem) as CertificateFacts).serial);
  }
  return { serials: [...serials].sort(), omitted };
}
