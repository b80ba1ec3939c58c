/** Helpers of the real-node tests: the client's view of the farmer, pods' timings, load under rollouts. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { kubectlOk } from '../cluster/helpers.ts';
import { repoRoot } from '../cluster/plane.ts';
import { CLIENT, FARMER, addressOf, fromClient, type RunResult } from './topology.ts';

export const FARMER_IP = addressOf(FARMER);
const PROBE = join(repoRoot(), 'test/nodes/client-probe.ts');

export interface HttpAnswer {
  status: number;
  body: string;
  /** curl's exit code: 0, or 7 (refused), 28 (timed out), ... */
  curl: number;
}

/** An HTTP GET from the client namespace, with a Host header, on a fresh connection. */
export async function curlFromClient(url: string, host?: string): Promise<HttpAnswer> {
  const r = await fromClient('curl', [
    '-sS',
    '-m',
    '15',
    '-o',
    '-',
    '-w',
    '\n%{http_code}',
    ...(host ? ['-H', `Host: ${host}`] : []),
    url,
  ]);
  const lines = r.stdout.split('\n');
  const status = Number(lines.pop());
  return { status, body: lines.join('\n'), curl: r.code };
}

/** A TCP exchange from the client namespace: sends message, returns what came back. */
export function tcpFromClient(host: string, port: number, message: string): Promise<RunResult> {
  return fromClient(process.execPath, [PROBE, 'tcp', host, String(port), message]);
}

export interface LoadResult {
  sent: number;
  ok: number;
  failed: number;
  failures: Record<string, number>;
  p99Ms: number;
}

/** Constant load from the client (new connection per request) until the returned stop() is called. */
export function loadFromClient(url: string, host: string, perSecond: number): { stop: () => Promise<LoadResult> } {
  const child = spawn(
    'ip',
    ['netns', 'exec', CLIENT.name, process.execPath, PROBE, 'load', url, host, String(perSecond)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      return JSON.parse(out) as LoadResult;
    },
  };
}

interface PodJson {
  metadata: { name: string; creationTimestamp: string; deletionTimestamp?: string };
  spec: { nodeName: string };
  status: {
    phase: string;
    podIP: string;
    conditions?: Array<{ type: string; status: string; lastTransitionTime: string }>;
    containerStatuses?: ContainerStatusJson[];
    initContainerStatuses?: ContainerStatusJson[];
  };
}

interface ContainerStatusJson {
  name: string;
  ready: boolean;
  restartCount: number;
  lastState?: { terminated?: { reason?: string; exitCode?: number; finishedAt?: string } };
}

interface PodSummary {
  name: string;
  node: string;
  ip: string;
  ready: boolean;
  restarts: number;
  /** Creation to Ready, in ms (undefined while not Ready). */
  startMs?: number;
  phase: string;
  /** Per container: ready, restarts and why it last ended, so a failed check says which and why. */
  containers: string[];
}

/** The pods of a namespace with a label selector, as the tests look at them. */
export async function pods(namespace: string, selector: string): Promise<PodSummary[]> {
  const list = JSON.parse(await kubectlOk(['get', 'pods', '-n', namespace, '-l', selector, '-o', 'json'])) as {
    items: PodJson[];
  };
  return list.items
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => {
      const ready = (p.status.conditions ?? []).find((c) => c.type === 'Ready');
      const statuses = [...(p.status.containerStatuses ?? []), ...(p.status.initContainerStatuses ?? [])];
      return {
        name: p.metadata.name,
        node: p.spec.nodeName,
        ip: p.status.podIP,
        phase: p.status.phase,
        ready: ready?.status === 'True',
        restarts: statuses.reduce((n, s) => n + s.restartCount, 0),
        startMs:
          ready?.status === 'True'
            ? Date.parse(ready.lastTransitionTime) - Date.parse(p.metadata.creationTimestamp)
            : undefined,
        containers: statuses.map((s) => {
          const ended = s.lastState?.terminated;
          const why = ended
            ? ` last ${ended.reason ?? '?'} (exit ${ended.exitCode ?? '?'}) at ${ended.finishedAt}`
            : '';
          return `${s.name} ready=${s.ready} restarts=${s.restartCount}${why}`;
        }),
      };
    });
}
