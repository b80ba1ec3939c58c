/**
 * Renders what the chart and `webgw crds` ship from the sources: the CRDs (each stamped with the
 * hash of its content, which the controller compares before upgrading them, crd-upgrade.ts) and
 * the controller's RBAC rules. `npm run generate` writes them into charts/webgw.
 */
import { stringify } from 'yaml';
import { clusterRules, crdRules, namespaceRules } from './rbac.ts';
import { withAppliedHash } from './runtime/apply.ts';
import { allCrds } from '../crds/schemas.ts';

export const GENERATED_HEADER = '# Generated from src/ by `npm run generate`; do not edit.\n';

export function renderCrd(crd: Record<string, unknown>): string {
  return GENERATED_HEADER + stringify(withAppliedHash(crd), { lineWidth: 0 });
}

/** Every CRD as one multi-document YAML stream. */
export function renderAllCrds(): string {
  return allCrds.map((c) => renderCrd(c)).join('---\n');
}

/** The controller's RBAC rules, read by the chart's templates (`.Files.Get`). */
export function renderRbacRules(): string {
  return (
    GENERATED_HEADER + stringify({ cluster: clusterRules, crds: crdRules, namespace: namespaceRules }, { lineWidth: 0 })
  );
}

/** File name of a CRD, e.g. webgw.io_gateways.yaml. */
export function crdFileName(crd: Record<string, unknown>): string {
  const spec = crd.spec as { group: string; names: { plural: string } };
  return `${spec.group}_${spec.names.plural}.yaml`;
}
