/** Jest global teardown of the `nodes` project: nodes first (their kubelets call the plane), then the plane. */
import { rmSync } from 'node:fs';
import { ControlPlane } from '../cluster/plane.ts';
import { nodesClean } from './topology.ts';

export default async function globalTeardown(): Promise<void> {
  await nodesClean();
  const reaper = Number(process.env.WEBGW_NODES_REAPER_PID);
  if (reaper > 0) {
    try {
      process.kill(reaper, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
  const dir = process.env.WEBGW_TEST_CLUSTER_DIR;
  if (!dir) return;
  await ControlPlane.load(dir).stop();
  if (process.env.WEBGW_KEEP_CLUSTER_DIR) process.stderr.write(`[nodes] plane logs kept in ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
}
