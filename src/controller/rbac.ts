/**
 * The controller's permissions, one source for deploy/ and the chart (a test fails when the
 * generated files drift, and a cluster test runs the reconcilers under exactly these rules).
 * Least privilege: cluster-wide it reads what it watches and writes only its own resources'
 * status, tenants' credential Secrets and Events; everything else it writes lives in its own
 * namespace (a Role there).
 */
export const CONTROLLER_NAME = 'webgw-controller';
/** The MutatingWebhookConfiguration whose caBundle the controller maintains. */
export const WEBHOOK_CONFIGURATION = 'webgw-injector';

type Rule = { apiGroups: string[]; resources: string[]; resourceNames?: string[]; verbs: string[] };

export const clusterRules: Rule[] = [
  { apiGroups: ['webgw.io'], resources: ['gateways', 'exposedservices'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['webgw.io'], resources: ['gateways/status', 'exposedservices/status'], verbs: ['patch', 'update'] },
  // Node addresses become Gateway addresses; namespace labels decide allowedNamespaces.
  { apiGroups: [''], resources: ['nodes', 'namespaces'], verbs: ['get', 'list', 'watch'] },
  // Agent credential Secrets live beside each ExposedService, in tenant namespaces. The watch is
  // label-filtered (webgw.io/exposed-service), but RBAC cannot express label selectors.
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  // Connector mode: an agent Deployment beside the ExposedService, in the tenant's namespace.
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'create', 'patch'] },
  // Proxy pods (status) and tenants' selected pods (reporting those that run without an agent).
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
  // Only its own webhook configuration, and only to keep the caBundle current.
  { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: [WEBHOOK_CONFIGURATION], verbs: ['get', 'patch'] },
];

/** In the controller's own namespace only: proxy workloads, their config, the leader Lease. */
export const namespaceRules: Rule[] = [
  { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
  { apiGroups: ['apps'], resources: ['daemonsets', 'deployments'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
];

export function rbacManifests(namespace: string): Array<Record<string, unknown>> {
  const labels = { 'app.kubernetes.io/name': 'webgw', 'app.kubernetes.io/component': 'controller' };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: CONTROLLER_NAME, namespace, labels } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: CONTROLLER_NAME, labels }, rules: clusterRules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: CONTROLLER_NAME, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: CONTROLLER_NAME },
      subjects: [{ kind: 'ServiceAccount', name: CONTROLLER_NAME, namespace }],
    },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: CONTROLLER_NAME, namespace, labels }, rules: namespaceRules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: CONTROLLER_NAME, namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: CONTROLLER_NAME },
      subjects: [{ kind: 'ServiceAccount', name: CONTROLLER_NAME, namespace }],
    },
  ];
}
