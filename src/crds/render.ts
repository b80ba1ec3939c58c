/** Renders the CRDs as YAML: `webgw crds`, deploy/crds/ and the chart all come from here. */
import { stringify } from 'yaml';
import { rbacManifests } from '../controller/rbac.ts';
import { allCrds } from './schemas.ts';

export const GENERATED_HEADER = '# Generated from src/ by `npm run generate`; do not edit.\n';

export function renderCrd(crd: Record<string, unknown>): string {
  return GENERATED_HEADER + stringify(crd, { lineWidth: 0 });
}

/** Every CRD as one multi-document YAML stream. */
export function renderAllCrds(): string {
  return allCrds.map((c) => renderCrd(c)).join('---\n');
}

/** The controller's ServiceAccount, ClusterRole, Role and bindings for namespace webgw-system. */
export function renderRbac(namespace = 'webgw-system'): string {
  return GENERATED_HEADER + rbacManifests(namespace).map((m) => stringify(m, { lineWidth: 0 })).join('---\n');
}

/** File name under deploy/crds for a CRD, e.g. webgw.io_gateways.yaml. */
export function crdFileName(crd: Record<string, unknown>): string {
  const spec = crd.spec as { group: string; names: { plural: string } };
  return `${spec.group}_${spec.names.plural}.yaml`;
}
