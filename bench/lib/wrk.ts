/** Runs wrk and parses its summary (requests/s and latency percentiles from --latency). */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface WrkResult {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

export interface WrkOptions {
  url: string;
  connections: number;
  threads?: number;
  durationSec: number;
  host?: string;
  headers?: string[];
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value.trim());
  if (!m) throw new Error(`cannot parse wrk latency ${value}`);
  const n = Number(m[1]);
  return { us: n / 1000, ms: n, s: n * 1000, m: n * 60_000 }[m[2] as 'us' | 'ms' | 's' | 'm'];
}

export function parseWrk(output: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(output);
  const p50 = /^\s+50%\s+(\S+)/m.exec(output);
  const p99 = /^\s+99%\s+(\S+)/m.exec(output);
  if (!rps || !p50 || !p99) throw new Error(`unexpected wrk output:\n${output}`);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  const errors =
    (socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0);
  return { requestsPerSec: Number(rps[1]), p50Ms: toMs(p50[1] as string), p99Ms: toMs(p99[1] as string), errors };
}

export async function wrk(opts: WrkOptions): Promise<WrkResult> {
  const threads = Math.min(opts.threads ?? 2, opts.connections);
  const args = [
    '-t',
    String(threads),
    '-c',
    String(opts.connections),
    '-d',
    `${opts.durationSec}s`,
    '--latency',
    ...(opts.host ? ['-H', `Host: ${opts.host}`] : []),
    ...(opts.headers ?? []).flatMap((h) => ['-H', h]),
    opts.url,
  ];
  const { stdout } = await run('wrk', args, { maxBuffer: 1024 * 1024 });
  return parseWrk(stdout);
}
