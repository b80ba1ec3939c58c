/**
 * Flow control counts bytes, so memory must follow bytes (issue 12): a peer that fills windows
 * with 1-byte DATA frames must not make the receiver hold an object per frame.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TunnelSession } from '../../src/tunnel/session.ts';
import type { TunnelStream } from '../../src/tunnel/stream.ts';
import type { OpenRequest } from '../../src/tunnel/open.ts';
import { ReceiveBudget } from '../../src/tunnel/receive-budget.ts';
import { memoryTransportPair } from '../helpers/memory-transport.ts';

const MiB = 1024 * 1024;
const req: OpenRequest = {
  protocol: 'tcp',
  hostname: '',
  port: 20001,
  client: { address: '127.0.0.1', port: 5000 },
  local: { address: '127.0.0.1', port: 20001 },
};

describe('tiny DATA frames', () => {
  it('16 unread streams filled with 1-byte frames cost about their window, not an object per frame', async () => {
    // Its own process: the memory measured is the receiver's, not Jest's.
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(__dirname, '..', 'helpers', 'tiny-frames-scenario.ts')],
      { timeout: 90_000 },
    );
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      frames: number;
      grownBytes: number;
      readBackIntact: boolean;
    };
    console.log(
      `1-byte frames: ${result.frames} frames held by 16 unread streams; receiver memory grew by ${(result.grownBytes / MiB).toFixed(1)} MiB`,
    );
    expect(result.frames).toBe(16 * 256 * 1024);
    expect(result.grownBytes).toBeLessThan(8 * MiB); // the 4 MiB of window data, plus blocks
    expect(result.readBackIntact).toBe(true);
  }, 120_000);

  it('a shared budget refuses new streams once spent, and gets everything back when sessions end', async () => {
    const tenant = new ReceiveBudget(1 * MiB);
    const [a, b] = memoryTransportPair();
    const gateway = new TunnelSession(a, { role: 'server', pingIntervalMs: 0, receiveBudget: tenant });
    const agent = new TunnelSession(b, { role: 'client', pingIntervalMs: 0 });
    agent.on('stream', (s) => s.accept());
    const opened: TunnelStream[] = [];
    let refused: unknown;
    try {
      for (let i = 0; i < 100; i++) opened.push(gateway.open(req));
    } catch (err) {
      refused = err;
    }
    // 80% of 1 MiB in 256 KiB windows (3), then 16 KiB windows up to the limit.
    expect(opened.length).toBe(3 + Math.floor((MiB - 3 * 256 * 1024) / (16 * 1024)));
    expect(refused).toMatchObject({ code: 'WEBGW_ERR_STREAM_LIMIT' });
    expect(tenant.used).toBeLessThanOrEqual(MiB);
    gateway.destroy();
    agent.destroy();
    expect(tenant.used).toBe(0);
  });
});
