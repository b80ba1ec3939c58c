/** Runs h2load (nghttp2's HTTP/2 load generator) and parses its summary. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface H2loadResult {
  requestsPerSec: number;
  meanMs: number;
  errors: number;
}

export interface H2loadOptions {
  url: string;
  connections: number;
  /** Concurrent streams per connection. */
  streams: number;
  durationSec: number;
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value.trim());
  if (!m) throw new Error(`cannot parse h2load time ${value}`);
  const n = Number(m[1]);
  return { us: n / 1000, ms: n, s: n * 1000 }[m[2] as 'us' | 'ms' | 's'];
}

export function parseH2load(output: string): H2loadResult {
  const rps = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(output);
  const requests =
    /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      output,
    );
  const time = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)/.exec(output);
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(output);
  if (!rps || !requests || !time || !status) throw new Error(`unexpected h2load output:\n${output}`);
  const errors =
    Number(requests[2]) + Number(requests[3]) + Number(requests[4]) + Number(status[3]) + Number(status[4]);
  return { requestsPerSec: Number(rps[1]), meanMs: toMs(time[3] as string), errors };
}

export async function h2load(opts: H2loadOptions): Promise<H2loadResult> {
  const threads = Math.min(2, opts.connections);
  const args = [
    '-t',
    String(threads),
    '-c',
    String(opts.connections),
    '-m',
    String(opts.streams),
    '-D',
    String(opts.durationSec),
    opts.url,
  ];
  const { stdout } = await run('h2load', args, { maxBuffer: 4 * 1024 * 1024 });
  return parseH2load(stdout);
}
