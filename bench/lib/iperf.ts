/** iperf3 through a tunnel: throughput, and the CPU the tunnel's processes spent per GB. */
import { execFile } from 'node:child_process';
import { cpuSeconds } from './proc.ts';

export interface IperfResult {
  gbitPerSec: number;
  bytes: number;
  /** CPU seconds of the tunnel's process trees per GB moved (0 for direct). */
  cpuSecondsPerGB: number;
}

export interface IperfOptions {
  port: number;
  streams: number;
  reverse: boolean;
  durationSec: number;
  pids: readonly number[];
}

/** Runs iperf3; waits and tries again (at most 10 times) while the server still ends the previous test. */
export async function iperf(opts: IperfOptions): Promise<IperfResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await iperfOnce(opts);
    } catch (err) {
      if (attempt >= 10 || !/busy/.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function iperfOnce(opts: IperfOptions): Promise<IperfResult> {
  const cpuBefore = cpuSeconds(opts.pids);
  const args = [
    '-c',
    '127.0.0.1',
    '-p',
    String(opts.port),
    '-t',
    String(opts.durationSec),
    '-P',
    String(opts.streams),
    '-J',
    ...(opts.reverse ? ['-R'] : []),
  ];
  return new Promise((resolve, reject) => {
    execFile(
      'iperf3',
      args,
      { maxBuffer: 16 * 1024 * 1024, timeout: (opts.durationSec + 30) * 1000 },
      (err, stdout) => {
        const cpu = cpuSeconds(opts.pids) - cpuBefore;
        let json: { end?: { sum_received?: { bytes: number; bits_per_second: number } }; error?: string };
        try {
          json = JSON.parse(stdout) as typeof json;
        } catch {
          return reject(err ?? new Error('iperf3 printed no JSON'));
        }
        const sum = json.end?.sum_received;
        if (!sum) return reject(new Error(`iperf3: ${json.error ?? err?.message}`));
        resolve({
          gbitPerSec: sum.bits_per_second / 1e9,
          bytes: sum.bytes,
          cpuSecondsPerGB: opts.pids.length ? cpu / (sum.bytes / 1e9) : 0,
        });
      },
    );
  });
}
