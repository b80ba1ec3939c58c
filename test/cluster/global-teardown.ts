/** Jest global teardown of the `cluster` project: stop every component, keep the logs. */
import { rmSync } from 'node:fs';
import { ControlPlane } from './plane.ts';

export default async function globalTeardown(): Promise<void> {
  const dir = process.env.WEBGW_TEST_CLUSTER_DIR;
  if (!dir) return;
  await ControlPlane.load(dir).stop();
  if (process.env.WEBGW_KEEP_CLUSTER_DIR) process.stderr.write(`[plane] logs kept in ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
}
