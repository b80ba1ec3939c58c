/**
 * Every file `npm run generate` writes, as path → content, so the drift tests compare exactly
 * what the generator would write:
 * - chartFiles(): from src/ — the chart's CRDs (charts/webgw/crds), the controller's RBAC rules
 *   (charts/webgw/generated/rbac-rules.yaml) and the Gateway spec schema inside
 *   values.schema.json (gateways[].spec is checked by `helm lint/install` like the API server would);
 * - deployFiles(): from the chart — deploy/, the chart's defaults for `kubectl apply -k deploy/`
 *   (`helm template`, so it needs the helm binary that `npm run cluster:build` builds).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { allCrds, gatewayCrd } from '../src/crds/schemas.ts';
import { crdFileName, renderCrd, renderRbacRules } from '../src/controller/manifests.ts';

export const repoRoot = join(import.meta.dirname, '..');
export const CHART_DIR = join(repoRoot, 'charts', 'webgw');
export const DEPLOY_NAMESPACE = 'webgw-system';

type JsonSchema = Record<string, unknown>;

/** JSON Schema (draft-07) from a CRD's OpenAPI schema: the Kubernetes extensions left out. */
function toJsonSchema(node: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('x-kubernetes-') || key === 'format') continue;
    if (key === 'properties')
      out[key] = Object.fromEntries(
        Object.entries(value as Record<string, JsonSchema>).map(([k, v]) => [k, toJsonSchema(v)]),
      );
    else if ((key === 'items' || key === 'additionalProperties') && typeof value === 'object')
      out[key] = toJsonSchema(value as JsonSchema);
    else out[key] = value;
  }
  return out;
}

function valuesSchema(): string {
  const path = join(CHART_DIR, 'values.schema.json');
  const schema = JSON.parse(readFileSync(path, 'utf8')) as {
    properties: { gateways: { items: { properties: Record<string, JsonSchema> } } };
  };
  const version = (
    gatewayCrd.spec as { versions: Array<{ schema: { openAPIV3Schema: { properties: { spec: JsonSchema } } } }> }
  ).versions[0]!;
  schema.properties.gateways.items.properties.spec = toJsonSchema(version.schema.openAPIV3Schema.properties.spec);
  return `${JSON.stringify(schema, null, 2)}\n`;
}

export function chartFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const crd of allCrds) files.set(join(CHART_DIR, 'crds', crdFileName(crd)), renderCrd(crd));
  files.set(join(CHART_DIR, 'generated', 'rbac-rules.yaml'), renderRbacRules());
  files.set(join(CHART_DIR, 'values.schema.json'), valuesSchema());
  return files;
}

/** `helm template` of the chart with its default values, split into CRDs and the rest. */
export function deployFiles(helm: string): Map<string, string> {
  const rendered = execFileSync(
    helm,
    ['template', 'webgw', CHART_DIR, '--namespace', DEPLOY_NAMESPACE, '--include-crds'],
    { encoding: 'utf8' },
  );
  const docs = rendered
    .split(/^---\s*$/m)
    .map((d) => d.trim())
    .filter((d) => /^kind:/m.test(d));
  const crds = docs.filter((d) => /^kind: CustomResourceDefinition$/m.test(d));
  const rest = docs.filter((d) => !crds.includes(d));
  const header = '# Generated from charts/webgw (its default values) by `npm run generate`; do not edit.\n';
  const dir = join(repoRoot, 'deploy');
  return new Map([
    [
      join(dir, 'kustomization.yaml'),
      `${header}apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - namespace.yaml\n  - crds.yaml\n  - webgw.yaml\n`,
    ],
    [join(dir, 'namespace.yaml'), `${header}apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${DEPLOY_NAMESPACE}\n`],
    [join(dir, 'crds.yaml'), header + crds.map((d) => `---\n${d}\n`).join('')],
    [join(dir, 'webgw.yaml'), header + rest.map((d) => `---\n${d}\n`).join('')],
  ]);
}
