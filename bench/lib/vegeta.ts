/** Fixed-rate HTTP load with vegeta: latency percentiles at a request rate held constant. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { peersBin } from './systems.ts';

export interface RateResult {
  rate: number;
  p50Ms: number;
  p99Ms: number;
  success: number;
}

export function vegeta(opts: { url: string; host?: string; rate: number; durationSec: number }): Promise<RateResult> {
  const target = `GET ${opts.url}\n${opts.host ? `Host: ${opts.host}\n` : ''}`;
  return new Promise((resolve, reject) => {
    const attack = execFile(
      join(peersBin, 'vegeta'),
      [
        'attack',
        `-rate=${opts.rate}/s`,
        `-duration=${opts.durationSec}s`,
        '-keepalive=true',
        '-max-workers=512',
        '-timeout=10s',
      ],
      { encoding: 'buffer', maxBuffer: 512 * 1024 * 1024 },
      (err, stdout) => {
        if (err) return reject(err);
        const report = execFile(
          join(peersBin, 'vegeta'),
          ['report', '-type=json'],
          { maxBuffer: 16 * 1024 * 1024 },
          (err2, out) => {
            if (err2) return reject(err2);
            const r = JSON.parse(out) as {
              latencies: { '50th': number; '99th': number };
              success: number;
              rate: number;
            };
            resolve({
              rate: r.rate,
              p50Ms: r.latencies['50th'] / 1e6,
              p99Ms: r.latencies['99th'] / 1e6,
              success: r.success,
            });
          },
        );
        report.stdin!.end(stdout);
      },
    );
    attack.stdin!.end(target);
  });
}
