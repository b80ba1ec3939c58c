/**
 * `npm run cluster:up` starts a control plane that outlives the command (for poking at it with
 * kubectl); `npm run cluster:down` stops it. State lives in ~/.cache/webgw/cluster.
 * `npm run cluster:up -- --node-network` also serves real nodes (test/nodes/node.sh) at
 * 198.18.254.1, with node IPAM and Service addresses in 198.18.0.0/15;
 * `npm run cluster:up -- --real-nodes` brings those nodes up too, installs the operator and a
 * sample tenant (test/nodes/demo.ts). Both need root.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane, binDir, defaultNodeNetwork, missingBinaries, type PlaneState } from './plane.ts';
import { realNodesDemo } from '../nodes/demo.ts';
import { nodesClean } from '../nodes/topology.ts';

const dir = join(homedir(), '.cache', 'webgw', 'cluster');

async function main(command: string | undefined): Promise<void> {
  if (command === 'up') {
    if (existsSync(join(dir, 'state.json')))
      throw new Error(`a plane is already up (${dir}); run npm run cluster:down first`);
    const missing = missingBinaries();
    if (missing.length > 0)
      throw new Error(`missing in ${binDir()}: ${missing.join(', ')}; run bash test/cluster/build.sh`);
    const realNodes = process.argv.includes('--real-nodes');
    const nodeNetwork = realNodes || process.argv.includes('--node-network') ? { nodeNetwork: defaultNodeNetwork } : {};
    const plane = new ControlPlane(dir, { detached: true, ...nodeNetwork });
    const log = (line: string): boolean => process.stdout.write(`${line}\n`);
    await plane.start(log);
    if (realNodes) await realNodesDemo(plane, log);
    else log(`control plane up; export KUBECONFIG=${plane.kubeconfig}`);
    return;
  }
  if (command === 'down') {
    if (!existsSync(join(dir, 'state.json'))) {
      process.stdout.write('no control plane is up\n');
      return;
    }
    const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as PlaneState;
    // Real nodes first (their kubelets call the plane); a no-op without them, root only.
    if (process.getuid?.() === 0) await nodesClean();
    await ControlPlane.load(state.dir).stop();
    rmSync(dir, { recursive: true, force: true });
    process.stdout.write('control plane stopped\n');
    return;
  }
  throw new Error('usage: node test/cluster/cluster-cli.ts up|down');
}

main(process.argv[2]).catch((err: Error) => {
  process.stderr.write(`${err.message}\n`);
  process.exitCode = 1;
});
