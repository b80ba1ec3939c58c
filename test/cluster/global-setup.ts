/** Jest global setup of the `cluster` project: one control plane per test run. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane, binDir, missingBinaries } from './plane.ts';

export default async function globalSetup(): Promise<void> {
  const missing = missingBinaries();
  if (missing.length > 0) {
    throw new Error(
      `cluster binaries missing in ${binDir()}: ${missing.join(', ')}. Build them once with: bash test/cluster/build.sh`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'webgw-cluster-'));
  const plane = new ControlPlane(dir);
  const started = Date.now();
  await plane.start((line) => process.stderr.write(`${line}\n`));
  process.stderr.write(`[plane] control plane up in ${Date.now() - started} ms: ${plane.kubeconfig}\n`);
  // Workers inherit this environment.
  process.env.WEBGW_TEST_CLUSTER_DIR = dir;
  process.env.KUBECONFIG = plane.kubeconfig;
}
