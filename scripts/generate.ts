/** Writes the generated manifests (deploy/crds) from src/crds. `npm run generate`. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allCrds } from '../src/crds/schemas.ts';
import { crdFileName, renderCrd, renderRbac } from '../src/crds/render.ts';

const root = join(import.meta.dirname, '..');
const dir = join(root, 'deploy', 'crds');
mkdirSync(dir, { recursive: true });
const controllerDir = join(root, 'deploy', 'controller');
mkdirSync(controllerDir, { recursive: true });
writeFileSync(join(controllerDir, 'rbac.yaml'), renderRbac());
process.stdout.write(`wrote ${join(controllerDir, 'rbac.yaml')}\n`);
for (const crd of allCrds) {
  const file = join(dir, crdFileName(crd));
  writeFileSync(file, renderCrd(crd));
  process.stdout.write(`wrote ${file}\n`);
}
