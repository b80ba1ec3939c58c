/**
 * Processes for the benchmarks: spawn keeping the last stderr lines, wait for a port, and account
 * a process tree's CPU time and resident memory from /proc (sshd forks per connection, so a
 * system's cost is its whole tree). Tunnels that use two descriptors per stream on one side
 * (a connection per stream between their ends) reach the file limit near 10,000 streams; the
 * memory scenario reports how many streams were really open.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';

export function spawnTool(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: opts.cwd, env: opts.env ?? process.env });
  const lines: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => {
    lines.push(l);
    if (lines.length > 30) lines.shift();
  });
  child.on('exit', (code, signal) => {
    if (code && code !== 0 && signal !== 'SIGTERM')
      process.stderr.write(`${cmd} exited ${code}:\n${lines.join('\n')}\n`);
  });
  return child;
}

export async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function stopChild(child: ChildProcess, timeoutMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

function stat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), field 3 onwards.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** `roots` and all their descendants. */
export function processTree(roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const ppid = Number(stat(pid)?.[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid)!.push(pid);
  }
  const all: number[] = [];
  const queue = [...roots];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    all.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return all;
}

const TICKS_PER_SECOND = 100;

/** User + system CPU seconds of a process tree. */
export function cpuSeconds(roots: readonly number[]): number {
  return processTree(roots).reduce((sum, pid) => {
    const f = stat(pid);
    return f ? sum + (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND : sum;
  }, 0);
}

/** Resident memory of a process tree, bytes (VmRSS). */
export function rssBytes(roots: readonly number[]): number {
  return processTree(roots).reduce((sum, pid) => {
    try {
      return sum + Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      return sum;
    }
  }, 0);
}

export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
