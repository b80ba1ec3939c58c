/**
 * Run as its own process by test/unit/tiny-frames.test.ts, so that the memory it reports is the
 * receiver's and nothing else's: 16 tunnel streams that are never read, each window filled by the
 * peer with 1-byte DATA frames. Prints one JSON line.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FrameType, encodeFrame } from '../../src/tunnel/frame.ts';
import type { OpenRequest } from '../../src/tunnel/open.ts';
import { TunnelSession } from '../../src/tunnel/session.ts';
import { memoryTransportPair, sendWhole } from './memory-transport.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** After two full collections a turn apart: dead ArrayBuffers' memory is released lazily. */
const retained = async (): Promise<number> => {
  gc();
  await new Promise((r) => setTimeout(r, 20));
  gc();
  const m = process.memoryUsage();
  if (process.env.DEBUG_MEM) console.error(m.heapUsed, m.arrayBuffers, m.external);
  return m.heapUsed + m.arrayBuffers;
};
const req: OpenRequest = {
  protocol: 'tcp',
  hostname: '',
  port: 20001,
  client: { address: '127.0.0.1', port: 5000 },
  local: { address: '127.0.0.1', port: 20001 },
};
const STREAMS = 16;
const WINDOW = 256 * 1024;
const PER_MESSAGE = 64 * 1024;

/** `count` DATA frames of one byte each for `streamId`, as one message. */
function oneByteFrames(streamId: number, count: number): Buffer {
  const frame = encodeFrame(FrameType.DATA, 0, streamId, Buffer.of(0x61));
  const message = Buffer.allocUnsafe(frame.length * count);
  for (let i = 0; i < count; i++) frame.copy(message, i * frame.length);
  return message;
}

const transports = memoryTransportPair(64 * 1024);
const [a, b] = transports;
const receiver = new TunnelSession(a, { role: 'server', pingIntervalMs: 0 });
const peer = new TunnelSession(b, { role: 'client', pingIntervalMs: 0 });
peer.on('stream', (s) => s.accept());
const streams = Array.from({ length: STREAMS }, () => receiver.open(req));
await Promise.all(streams.map((s) => s.accepted()));
const before = await retained();
for (const s of streams) {
  for (let sent = 0; sent < WINDOW; sent += PER_MESSAGE) sendWhole(b, oneByteFrames(s.id, PER_MESSAGE));
}
transports.sent[1]!.length = 0; // the helper's record of what was sent is not the receiver's memory
const deadline = Date.now() + 60_000;
while (!streams.every((s) => s.receivedBytes === WINDOW) && Date.now() < deadline)
  await new Promise((r) => setTimeout(r, 50));
transports.sent[1]!.length = 0;
const full = await retained();
// Reading one stream back gives its bytes, in order.
const first = streams[0]!;
const chunks: Buffer[] = [];
first.on('data', (c: Buffer) => chunks.push(c));
await new Promise((r) => setTimeout(r, 50));
const text = Buffer.concat(chunks).toString('latin1');
console.log(
  JSON.stringify({
    frames: streams.reduce((n, s) => n + s.receivedBytes, 0),
    grownBytes: full - before,
    readBackIntact: text.length === WINDOW && /^a+$/.test(text),
  }),
);
receiver.destroy();
peer.destroy();
