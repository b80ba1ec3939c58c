/** Small helpers for the controller benchmark: kubectl against its plane, percentiles, waits. */
import { execFile } from 'node:child_process';
import { cpuSeconds, rssBytes } from './proc.ts';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** kubectl with the plane's kubeconfig; rejects with its stderr on failure. */
export function runKubectl(kubeconfig: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'kubectl',
      ['--kubeconfig', kubeconfig, ...args],
      { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`kubectl ${args.join(' ')}: ${stderr || err.message}`));
        else resolve(stdout);
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** Nearest-rank percentile (0 for no samples). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! * 10) / 10;
}

export const treeCpuSeconds = (pid: number): number => cpuSeconds([pid]);
export const treeRssMiB = (pid: number): number => rssBytes([pid]) / 1024 / 1024;
