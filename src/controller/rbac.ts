/**
 * The controller's permissions, one source for deploy/ and the chart (a test fails when the
 * generated files drift, and a cluster test runs the reconcilers under exactly these rules).
 * Least privilege: cluster-wide it reads what it watches and writes only its own resources'
 * status, tenants' credential Secrets and Events; everything else it writes lives in its own
 * namespace (a Role there).
 */
import { allCrds } from '../crds/schemas.ts';

export const CONTROLLER_NAME = 'webgw-controller';
/** The MutatingWebhookConfiguration whose caBundle the controller maintains. */
export const WEBHOOK_CONFIGURATION = 'webgw-injector';

type Rule = { apiGroups: string[]; resources: string[]; resourceNames?: string[]; verbs: string[] };

export const clusterRules: Rule[] = [
  { apiGroups: ['webgw.io'], resources: ['gateways', 'exposedservices'], verbs: ['get', 'list', 'watch'] },
  // Status is written with merge patches only.
  { apiGroups: ['webgw.io'], resources: ['gateways/status', 'exposedservices/status'], verbs: ['patch'] },
  // Node addresses become Gateway addresses; namespace labels decide allowedNamespaces.
  { apiGroups: [''], resources: ['nodes', 'namespaces'], verbs: ['get', 'list', 'watch'] },
  // Agent credential Secrets live beside each ExposedService, in tenant namespaces. The watch is
  // label-filtered (webgw.io/exposed-service), but RBAC cannot express label selectors.
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
  // Events are created, never updated or aggregated.
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  // Connector mode: an agent Deployment beside the ExposedService, in the tenant's namespace.
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'create', 'patch'] },
  // Proxy pods (status) and tenants' selected pods (reporting those that run without an agent).
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
  // Only its own webhook configuration, and only to keep the caBundle current.
  {
    apiGroups: ['admissionregistration.k8s.io'],
    resources: ['mutatingwebhookconfigurations'],
    resourceNames: [WEBHOOK_CONFIGURATION],
    verbs: ['get', 'patch'],
  },
];

/** In the controller's own namespace only: proxy workloads, their config, the leader Lease. */
export const namespaceRules: Rule[] = [
  { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
  {
    apiGroups: ['apps'],
    resources: ['daemonsets', 'deployments'],
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
  },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
  // An annotation on proxy pods makes their kubelet refresh the admitted agents at once.
  { apiGroups: [''], resources: ['pods'], verbs: ['patch'] },
  // spec.acme: a certificate whose hostname is no longer served here leaves with its Secret.
  { apiGroups: [''], resources: ['secrets'], verbs: ['delete'] },
];

/**
 * With `--manage-crds` (the chart's default): the leader keeps exactly the webgw CRDs at its own
 * schema (crd-upgrade.ts). Never create or delete: Helm's crds/ (or deploy/) installs them.
 */
export const crdRules: Rule[] = [
  {
    apiGroups: ['apiextensions.k8s.io'],
    resources: ['customresourcedefinitions'],
    resourceNames: allCrds.map((c) => (c.metadata as { name: string }).name),
    verbs: ['get', 'patch'],
  },
];
