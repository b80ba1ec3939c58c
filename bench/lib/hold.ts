/**
 * Memory per open stream: opens `n` idle TCP connections through a tunnel to the holder, waits
 * until the holder has accepted them all (so every stream exists end to end), and measures the
 * tunnel's resident memory.
 */
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import type { Holder } from './backends.ts';
import { rssBytes } from './proc.ts';

export async function rssWithOpenStreams(opts: {
  port: number;
  n: number;
  holder: Holder;
  pids: readonly number[];
  timeoutMs?: number;
}): Promise<{ rss: number; opened: number; alive: boolean }> {
  const sockets: Socket[] = [];
  const base = await opts.holder.count();
  try {
    for (let i = 0; i < opts.n; i++) {
      const s = connect(opts.port, '127.0.0.1');
      s.on('error', () => {});
      sockets.push(s);
      if (i % 200 === 199) await new Promise((r) => setTimeout(r, 20)); // stay under listen backlogs
    }
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    let held = 0;
    while (Date.now() < deadline) {
      held = (await opts.holder.count()) - base;
      if (held >= opts.n) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    await new Promise((r) => setTimeout(r, 1000)); // let buffers settle
    const alive = opts.pids.every((pid) => existsSync(`/proc/${pid}`));
    return { rss: rssBytes(opts.pids), opened: held, alive };
  } finally {
    for (const s of sockets) s.destroy();
    // Wait for the tunnel to close its side, so the next measurement starts clean.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (await opts.holder.count()) > base) await new Promise((r) => setTimeout(r, 250));
  }
}
