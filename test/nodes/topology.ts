/**
 * Real nodes around a control plane (issue 13): a farmer node (labelled for Gateways), a worker
 * node for tenants' pods, and a client namespace standing for the Internet, all on one host
 * bridge in 198.18.255.0/24 (test/nodes/node.sh does the work). The worker refuses every new
 * connection from the farmer and the client: whatever reaches a tenant's pod from outside came
 * through a tunnel its agent dialled.
 *
 * Used by the `nodes` Jest project's global setup and by `npm run cluster:up -- --real-nodes`.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, type ControlPlane } from '../cluster/plane.ts';

// Not __dirname: the demo runs this file as an ES module, Jest as CommonJS.
const HERE = join(repoRoot(), 'test/nodes');
export const NODE_SCRIPT = join(HERE, 'node.sh');
export const CACHE = process.env.WEBGW_CACHE_NODES ?? join(homedir(), '.cache', 'webgw', 'nodes');

export interface NamespaceSpec {
  name: string;
  /** The namespace's address is 198.18.255.(10 + index) (node.sh). */
  index: number;
  labels?: string[];
}

export const FARMER_LABEL = 'webgw.io/farmer';
export const FARMER_TAINT = `${FARMER_LABEL}=true`;
export const FARMER: NamespaceSpec = { name: 'farmer', index: 1, labels: [`${FARMER_LABEL}=true`] };
export const WORKER: NamespaceSpec = { name: 'worker', index: 2 };
export const CLIENT: NamespaceSpec = { name: 'client', index: 3 };
/** The kubelets' clusterDNS (node.sh) and CoreDNS's Service address (coredns.yaml). */
export const CLUSTER_DNS = '198.19.0.10';

export function addressOf(ns: NamespaceSpec): string {
  return `198.18.255.${10 + ns.index}`;
}

export const IMAGES = { webgw: 'webgw.test/webgw:dev', app: 'webgw.test/app:1' } as const;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program; never throws (the exit code is in the result). */
export function run(
  program: string,
  args: string[],
  options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      program,
      args,
      { maxBuffer: 16 * 1024 * 1024, timeout: options.timeoutMs ?? 120_000, env: options.env ?? process.env },
      (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) || 1 : 0, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

export async function runOk(
  program: string,
  args: string[],
  options: { input?: string; timeoutMs?: number } = {},
): Promise<string> {
  const r = await run(program, args, options);
  if (r.code !== 0) throw new Error(`${program} ${args.join(' ')} failed (${r.code}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** A program run inside the client namespace ("the Internet"). */
export function fromClient(
  program: string,
  args: string[],
  options: { input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return run('ip', ['netns', 'exec', CLIENT.name, program, ...args], options);
}

/** What the `nodes` project needs that `npm run nodes:build` makes, and the tools it calls. */
export function missingForNodes(): string[] {
  const missing = ['kubelet', 'kube-proxy', 'coredns'].filter((b) => !existsSync(join(CACHE, 'bin', b)));
  missing.push(
    ...['pause', 'webgw', 'app', 'coredns'].map((i) => `${i}.tar`).filter((i) => !existsSync(join(CACHE, 'images', i))),
  );
  if (process.getuid?.() !== 0) missing.push('root (network namespaces, containerd)');
  return missing;
}

/** Removes every node, client, bridge, route and rule a run (also a killed one) left behind. */
export async function nodesClean(): Promise<void> {
  await runOk('bash', [NODE_SCRIPT, 'clean'], { timeoutMs: 120_000 });
}

/**
 * Brings up the farmer and the worker (in parallel), the client, the pod routes, the worker's
 * refusal of inbound connections, and CoreDNS; returns when both nodes are Ready.
 */
export async function nodesUp(plane: ControlPlane, log: (line: string) => void): Promise<void> {
  const started = Date.now();
  await nodesClean();
  await Promise.all(
    [FARMER, WORKER].map((n) =>
      runOk('bash', [NODE_SCRIPT, 'up', n.name, String(n.index), plane.dir, ...(n.labels ?? [])], {
        timeoutMs: 180_000,
      }),
    ),
  );
  await runOk('bash', [NODE_SCRIPT, 'client', CLIENT.name, String(CLIENT.index)]);
  await runOk('bash', [NODE_SCRIPT, 'routes', plane.dir]);
  await runOk('bash', [NODE_SCRIPT, 'refuse-inbound', WORKER.name, addressOf(FARMER), addressOf(CLIENT)]);
  const kubectl = (args: string[], input?: string): Promise<string> =>
    runOk('kubectl', ['--kubeconfig', plane.kubeconfig, ...args], { input, timeoutMs: 180_000 });
  await kubectl(['wait', '--for=condition=Ready', 'node', FARMER.name, WORKER.name, '--timeout=120s']);
  // The farmer's node is for gateways (they tolerate this); tenants' pods go to the worker.
  await kubectl(['taint', 'node', FARMER.name, `${FARMER_TAINT}:NoSchedule`, '--overwrite']);
  log(`[nodes] farmer and worker Ready after ${Date.now() - started} ms`);
  // Not waited for: only Connector mode needs it (waitForClusterDns). The first pod a fresh
  // kubelet runs has waited up to 70 s for its ConfigMap volume ("failed to sync configmap cache").
  await kubectl(['apply', '-f', '-'], readFileSync(join(HERE, 'coredns.yaml'), 'utf8'));
}

/** Until CoreDNS (coredns.yaml) answers for the cluster. */
export async function waitForClusterDns(kubeconfig: string): Promise<void> {
  await runOk(
    'kubectl',
    ['--kubeconfig', kubeconfig, '-n', 'kube-system', 'rollout', 'status', 'deployment/coredns', '--timeout=180s'],
    { timeoutMs: 200_000 },
  );
}
