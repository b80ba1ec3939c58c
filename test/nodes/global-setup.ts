/**
 * Jest global setup of the `nodes` project: a control plane with a node network, real nodes
 * around it (topology.ts), and a reaper that removes the nodes if this Jest process dies without
 * its teardown (SIGKILL): node daemons and containers are not children of Jest.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane, binDir, defaultNodeNetwork, missingBinaries } from '../cluster/plane.ts';
import { CACHE, NODE_SCRIPT, missingForNodes, nodesUp } from './topology.ts';

export default async function globalSetup(): Promise<void> {
  const missing = [...missingBinaries().map((b) => join(binDir(), b)), ...missingForNodes()];
  if (missing.length > 0)
    throw new Error(
      `real nodes need: ${missing.join(', ')}. Build them with: npm run cluster:build && npm run nodes:build (as root)`,
    );
  const log = (line: string): boolean => process.stderr.write(`${line}\n`);
  const reaper = spawn('bash', [join(NODE_SCRIPT, '..', 'reaper.sh'), String(process.pid)], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, WEBGW_CACHE_NODES: CACHE },
  });
  reaper.unref();
  process.env.WEBGW_NODES_REAPER_PID = String(reaper.pid);

  const dir = mkdtempSync(join(tmpdir(), 'webgw-nodes-'));
  const plane = new ControlPlane(dir, { nodeNetwork: defaultNodeNetwork });
  const started = Date.now();
  await plane.start(log);
  // Workers inherit this environment; test/cluster/helpers.ts finds the plane through it.
  process.env.WEBGW_TEST_CLUSTER_DIR = dir;
  process.env.KUBECONFIG = plane.kubeconfig;
  await nodesUp(plane, log);
  log(`[nodes] plane and real nodes up in ${Date.now() - started} ms: ${plane.kubeconfig}`);
}
