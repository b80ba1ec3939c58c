import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { allCrds } from '../../src/crds/schemas.ts';
import { renderAllCrds } from '../../src/controller/manifests.ts';
import { chartFiles } from '../../scripts/generated-files.ts';
import { setCondition } from '../../src/crds/conditions.ts';

describe('CRD manifests', () => {
  it.each([...chartFiles()].map(([path, content]) => [relative(join(__dirname, '../..'), path), content]))(
    '%s is up to date (npm run generate)',
    (path, content) => {
      expect(readFileSync(join(__dirname, '../..', path), 'utf8')).toBe(content);
    },
  );

  it('`webgw crds` prints both CRDs as one YAML stream', () => {
    const docs = parseAllDocuments(renderAllCrds()).map((d) => d.toJS() as { metadata: { name: string } });
    expect(docs.map((d) => d.metadata.name)).toEqual(['gateways.webgw.io', 'exposedservices.webgw.io']);
  });

  it('every object and array in the schemas is bounded (CEL cost) and every string has a maxLength', () => {
    const problems: string[] = [];
    const walk = (node: Record<string, unknown>, path: string): void => {
      if (node.type === 'array' && node.maxItems === undefined) problems.push(`${path}: array without maxItems`);
      if (
        node.type === 'string' &&
        node.maxLength === undefined &&
        node.enum === undefined &&
        node.format === undefined &&
        !/\.(apiVersion|kind)$/.test(path)
      )
        problems.push(`${path}: string without maxLength`);
      for (const [key, child] of Object.entries((node.properties as Record<string, Record<string, unknown>>) ?? {}))
        walk(child, `${path}.${key}`);
      if (node.items) walk(node.items as Record<string, unknown>, `${path}[]`);
      if (typeof node.additionalProperties === 'object')
        walk(node.additionalProperties as Record<string, unknown>, `${path}{}`);
    };
    for (const crd of allCrds) {
      const version = (crd.spec as { versions: Array<{ schema: { openAPIV3Schema: Record<string, unknown> } }> })
        .versions[0]!;
      walk(version.schema.openAPIV3Schema, (crd.metadata as { name: string }).name);
    }
    expect(problems).toEqual([]);
  });
});

describe('conditions', () => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  const t1 = new Date('2026-01-01T00:05:00Z');
  it('keeps lastTransitionTime while the status does not flip', () => {
    const a = setCondition(
      [],
      { type: 'Ready', status: 'False', reason: 'PodsNotReady', message: '0/1', observedGeneration: 1 },
      t0,
    );
    const b = setCondition(
      a,
      { type: 'Ready', status: 'False', reason: 'PodsNotReady', message: '0/2', observedGeneration: 2 },
      t1,
    );
    expect(b[0]).toMatchObject({ lastTransitionTime: '2026-01-01T00:00:00Z', message: '0/2', observedGeneration: 2 });
    const c = setCondition(
      b,
      { type: 'Ready', status: 'True', reason: 'PodsReady', message: '2/2', observedGeneration: 2 },
      t1,
    );
    expect(c[0]!.lastTransitionTime).toBe('2026-01-01T00:05:00Z');
  });
});
