/**
 * Where the tools the tests and `npm run generate` run are cached: Kubernetes components and helm,
 * built from the Go module proxy (test/cluster/build.sh) under the Kubernetes version the
 * committed wrapper module pins. Shared by scripts/ and the test harness, so neither imports the
 * other's internals.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** The repository root, found from the working directory (npm scripts and Jest run there). */
export function repoRoot(): string {
  let dir = process.cwd();
  while (!existsSync(join(dir, 'test/cluster/components/k8s/go.mod'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('run this from the webgw repository');
    dir = parent;
  }
  return dir;
}

export function k8sVersion(): string {
  const gomod = readFileSync(join(repoRoot(), 'test/cluster/components/k8s/go.mod'), 'utf8');
  const m = /^require k8s\.io\/kubernetes (v\S+)/m.exec(gomod);
  if (!m) throw new Error('cannot read the Kubernetes version from components/k8s/go.mod');
  return m[1] as string;
}

export function binDir(): string {
  return process.env.WEBGW_CACHE
    ? join(process.env.WEBGW_CACHE, 'bin')
    : join(homedir(), '.cache', 'webgw', `k8s-${k8sVersion()}`, 'bin');
}
