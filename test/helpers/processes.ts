/** Runs the real `webgw` CLI as child processes, for tests that measure a process (memory). */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot as findRepoRoot } from '../../scripts/tool-cache.ts';

/** Found from the working directory, so the file loads both under Jest (CommonJS) and as ESM (npm run soak). */
export const repoRoot = findRepoRoot();

export interface WebgwProcess {
  proc: ChildProcess;
  logs: Array<Record<string, unknown>>;
  waitForLog(predicate: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  rssBytes(): number;
  stop(): Promise<number | null>;
}

export interface SpawnOptions {
  /** Options for node itself, before the script (e.g. `--import` of a test preload). */
  nodeArgs?: string[];
  /** The command line that starts node, instead of this node (e.g. setpriv ... other-node). */
  launch?: string[];
}

export function spawnWebgw(args: string[], env: Record<string, string> = {}, opts: SpawnOptions = {}): WebgwProcess {
  const [program, ...launchArgs] = opts.launch ?? [process.execPath];
  const proc = spawn(program!, [...launchArgs, ...(opts.nodeArgs ?? []), join(repoRoot, 'src/cli/main.ts'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const logs: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      logs.push({ msg: line });
    }
    for (const w of waiters.splice(0)) w();
  });
  proc.stdout!.resume();
  return {
    proc,
    logs,
    waitForLog(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no matching log line; got: ${JSON.stringify(logs.slice(-5))}`)),
          timeoutMs,
        );
        const check = (): void => {
          const hit = logs.find(predicate);
          if (hit) {
            clearTimeout(timer);
            resolve(hit);
          } else {
            waiters.push(check);
          }
        };
        check();
      });
    },
    rssBytes() {
      const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    },
    stop() {
      return new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) {
          resolve(proc.exitCode);
          return;
        }
        proc.once('exit', (code) => resolve(code));
        proc.kill('SIGTERM');
      });
    },
  };
}
