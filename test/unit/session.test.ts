import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TunnelSession } from '../../src/tunnel/session.ts';
import type { TunnelStream } from '../../src/tunnel/stream.ts';
import { ResetCode, encodeFrame, FrameDecoder, FrameType } from '../../src/tunnel/frame.ts';
import type { OpenRequest } from '../../src/tunnel/open.ts';
import { memoryTransportPair, sendWhole } from '../helpers/memory-transport.ts';

const req: OpenRequest = {
  protocol: 'tcp',
  hostname: '',
  port: 20001,
  client: { address: '127.0.0.1', port: 5000 },
  local: { address: '127.0.0.1', port: 20001 },
};

function pair(opts: Partial<ConstructorParameters<typeof TunnelSession>[1]> = {}) {
  const [a, b] = memoryTransportPair();
  const server = new TunnelSession(a, { role: 'server', pingIntervalMs: 0, ...opts });
  const client = new TunnelSession(b, { role: 'client', pingIntervalMs: 0, ...opts });
  return { server, client };
}

async function readAll(s: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The client side echoes every stream back. */
function echo(session: TunnelSession): void {
  session.on('stream', (s: TunnelStream) => {
    s.accept();
    void pipeline(s, s).catch(() => {});
  });
}

describe('tunnel session', () => {
  it('opens, accepts and echoes data with half-close', async () => {
    const { server, client } = pair();
    echo(client);
    const s = server.open(req);
    await s.accepted();
    const data = randomBytes(1_000_000);
    s.end(data);
    const back = await readAll(s);
    expect(back.equals(data)).toBe(true);
    await server.close();
    expect(client.isClosed).toBe(true);
  });

  it('refusal before accept is a retryable STREAM_REFUSED', async () => {
    const { server, client } = pair();
    client.on('stream', (s) => s.refuse(ResetCode.BACKEND_UNREACHABLE, 'connect ECONNREFUSED'));
    const s = server.open(req);
    s.on('error', () => {});
    await expect(s.accepted()).rejects.toMatchObject({ code: 'WEBGW_ERR_STREAM_REFUSED', retryable: true });
    expect(s.sentBytes).toBe(0);
    server.destroy();
  });

  it('a peer with no stream handler refuses', async () => {
    const { server } = pair();
    const s = server.open(req);
    s.on('error', () => {});
    await expect(s.accepted()).rejects.toMatchObject({ code: 'WEBGW_ERR_STREAM_REFUSED' });
    server.destroy();
  });

  it('a consumer that stops reading stops the sender after about one window', async () => {
    const { server, client } = pair({ initialWindow: 64 * 1024, maxWindow: 256 * 1024 });
    let inbound: TunnelStream | undefined;
    client.on('stream', (s) => {
      inbound = s;
      s.accept();
      s.pause();
    });
    const s = server.open(req);
    s.on('error', () => {});
    await s.accepted();
    const chunk = Buffer.alloc(16 * 1024);
    const written = 64 * chunk.length;
    for (let i = 0; i < 64; i++) s.write(chunk);
    await new Promise((r) => setTimeout(r, 200));
    expect(inbound!.receivedBytes).toBe(64 * 1024);
    expect(s.writableLength).toBe(written - 64 * 1024);
    // Resuming releases the rest.
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const done = pipeline(inbound!, sink);
    s.end();
    await done;
    expect(inbound!.receivedBytes).toBe(written);
    server.destroy();
  });

  it('grows the window for a fast consumer', async () => {
    const { server, client } = pair();
    let inbound: TunnelStream | undefined;
    client.on('stream', (s) => {
      inbound = s;
      s.on('error', () => {});
      s.accept();
      s.resume();
    });
    const s = server.open(req);
    s.on('error', () => {});
    await s.accepted();
    // A writer with more queued than one window is window-limited: the window must grow.
    const chunk = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < 24; i++) if (!s.write(chunk)) await once(s, 'drain');
    s.end();
    await once(inbound!, 'end');
    expect(inbound!.receiveWindow).toBeGreaterThan(256 * 1024);
    server.destroy();
  });

  it('1,000 concurrent streams complete with their own data', async () => {
    const { server, client } = pair();
    echo(client);
    const results = await Promise.all(
      Array.from({ length: 1000 }, async (_v, i) => {
        const s = server.open(req);
        await s.accepted();
        const data = randomBytes(1000 + i * 7);
        s.end(data);
        const back = await readAll(s);
        return createHash('sha256').update(back).digest('hex') === createHash('sha256').update(data).digest('hex');
      }),
    );
    expect(results.every(Boolean)).toBe(true);
    expect(server.activeStreams).toBe(0);
    server.destroy();
  });

  it('enforces the stream limit with a refusal', async () => {
    const { server, client } = pair({ maxStreams: 2 });
    client.on('stream', (s) => {
      s.on('error', () => {});
      s.accept();
    });
    const a = server.open(req);
    const b = server.open(req);
    for (const s of [a, b]) s.on('error', () => {});
    await Promise.all([a.accepted(), b.accepted()]);
    expect(() => server.open(req)).toThrow(/already has 2 streams/);
    server.destroy();
  });

  it('GOAWAY stops new streams but lets open ones finish', async () => {
    const { server, client } = pair();
    echo(client);
    const s = server.open(req);
    await s.accepted();
    const closing = client.close();
    await once(server, 'goaway');
    expect(() => server.open(req)).toThrow(/draining/);
    s.end(Buffer.from('still here'));
    expect((await readAll(s)).toString()).toBe('still here');
    await closing;
    expect(server.isClosed).toBe(true);
  });

  it('measures RTT with PING/PONG', async () => {
    const { server, client } = pair();
    const rtt = once(server, 'rtt');
    server.ping();
    const [ms] = await rtt;
    expect(ms).toBeGreaterThanOrEqual(0);
    expect(server.rttMs).toBe(ms);
    client.destroy();
  });

  it('declares a peer dead after missed pongs', async () => {
    const [a] = memoryTransportPair(); // nobody answers on the other end
    const session = new TunnelSession(a, { role: 'server', pingIntervalMs: 5, maxMissedPongs: 2 });
    const [err] = await once(session, 'close');
    expect(err).toMatchObject({ code: 'WEBGW_ERR_PEER_DEAD' });
  });

  /** A peer on the raw transport that answers each PING after `delayMs`, and sends `extra` every `everyMs`. */
  function slowPeer(t: ReturnType<typeof memoryTransportPair>[1], delayMs: number, keepTalkingMs?: number): () => void {
    const decoder = new FrameDecoder((f) => {
      if (f.type === FrameType.PING) {
        const payload = Buffer.from(f.payload);
        setTimeout(() => sendWhole(t, encodeFrame(FrameType.PONG, 0, 0, payload)), delayMs).unref();
      }
    });
    t.onData((chunk, end) => decoder.push(chunk, end));
    t.onClose(() => {});
    // Frames the session hears: PINGs of its own (it answers them).
    const talk = keepTalkingMs
      ? setInterval(() => sendWhole(t, encodeFrame(FrameType.PING, 0, 0, Buffer.alloc(8))), keepTalkingMs)
      : undefined;
    return () => clearInterval(talk);
  }

  it('a pong slower than the ping interval still answers its ping (a long round trip is not death)', async () => {
    const [a, b] = memoryTransportPair();
    const stop = slowPeer(b, 35); // 3.5 intervals
    const session = new TunnelSession(a, { role: 'server', pingIntervalMs: 10, maxMissedPongs: 5 });
    const [ms] = (await once(session, 'rtt')) as [number];
    expect(ms).toBeGreaterThanOrEqual(30);
    await new Promise((r) => setTimeout(r, 200));
    expect(session.isClosed).toBe(false);
    session.destroy();
    stop();
  });

  it('any frame from the peer proves it alive while its pongs wait behind data', async () => {
    const [a, b] = memoryTransportPair();
    const stop = slowPeer(b, 10_000, 5); // pongs never in time, but the peer keeps talking
    const session = new TunnelSession(a, { role: 'server', pingIntervalMs: 10, maxMissedPongs: 2 });
    await new Promise((r) => setTimeout(r, 200));
    expect(session.isClosed).toBe(false);
    stop();
    const [err] = await once(session, 'close');
    expect(err).toMatchObject({ code: 'WEBGW_ERR_PEER_DEAD' });
  });

  const hostile: Array<[string, Buffer]> = [
    ['random bytes', randomBytes(64)],
    [
      'DATA beyond the window',
      Buffer.concat([
        encodeFrame(FrameType.DATA, 0, 1, Buffer.alloc(60000)),
        encodeFrame(FrameType.DATA, 0, 1, Buffer.alloc(60000)),
      ]),
    ],
    ['an OPEN with the wrong parity', encodeFrame(FrameType.OPEN, 0, 1, Buffer.alloc(20))],
    ['a malformed OPEN', encodeFrame(FrameType.OPEN, 0, 2, Buffer.alloc(3))],
  ];
  it.each(hostile)('ends the session on %s without throwing', async (_name, bytes) => {
    const [a, b] = memoryTransportPair();
    const server = new TunnelSession(a, { role: 'server', pingIntervalMs: 0, initialWindow: 64 * 1024 });
    const client = new TunnelSession(b, { role: 'client', pingIntervalMs: 0 });
    client.on('stream', (s) => {
      s.on('error', () => {});
      s.accept();
    });
    const s = server.open(req);
    s.on('error', () => {});
    await s.accepted();
    const closed = once(server, 'close');
    // Inject the hostile message as if the client had sent it.
    sendWhole(b, bytes);
    const [err] = await closed;
    expect(err).toBeInstanceOf(Error);
    expect(s.destroyed).toBe(true);
  });
});
