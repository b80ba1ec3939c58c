import {
  FLAG_ACK,
  FLAG_BLOCKED,
  FrameDecoder,
  FrameType,
  HEADER_BYTES,
  MAX_DATA_PAYLOAD,
  encodeFrame,
  encodeHeader,
  type Frame,
} from '../../src/tunnel/frame.ts';
import { decodeOpen, encodeOpen, type OpenPayload } from '../../src/tunnel/open.ts';

function decodeAll(buf: Buffer): Frame[] {
  const out: Frame[] = [];
  new FrameDecoder((f) => out.push({ ...f, payload: Buffer.from(f.payload) })).push(buf, true);
  return out;
}

describe('frame codec', () => {
  it('round-trips several frames in one message', () => {
    const msg = Buffer.concat([
      encodeFrame(FrameType.DATA, 0, 3, Buffer.from('hello')),
      encodeFrame(FrameType.WINDOW, FLAG_ACK, 3, Buffer.from([0, 4, 0, 0])),
      encodeFrame(FrameType.PING, 0, 0, Buffer.alloc(8)),
      encodeHeader(FrameType.FIN, 0, 3, 0),
    ]);
    const frames = decodeAll(msg);
    expect(frames.map((f) => [f.type, f.flags, f.streamId, f.payload.length])).toEqual([
      [FrameType.DATA, 0, 3, 5],
      [FrameType.WINDOW, FLAG_ACK, 3, 4],
      [FrameType.PING, 0, 0, 8],
      [FrameType.FIN, 0, 3, 0],
    ]);
    expect(frames[0]!.payload.toString()).toBe('hello');
  });

  const bad: Array<[string, Buffer, RegExp]> = [
    ['a truncated header', Buffer.from([2, 0, 0]), /truncated frame header/],
    ['an unknown type', encodeFrame(99 as FrameType, 0, 1), /unknown frame type 99/],
    ['type zero', encodeFrame(0 as FrameType, 0, 1), /unknown frame type 0/],
    [
      'a payload longer than the message',
      Buffer.concat([encodeHeader(FrameType.DATA, 0, 1, 100), Buffer.alloc(10)]),
      /truncated/,
    ],
    ['an oversized DATA frame', encodeHeader(FrameType.DATA, 0, 1, MAX_DATA_PAYLOAD + 1), /exceeds/],
    ['an oversized control frame', encodeHeader(FrameType.OPEN, 0, 1, 5000), /exceeds/],
    ['DATA on stream 0', encodeFrame(FrameType.DATA, 0, 0, Buffer.from('x')), /on stream 0/],
    ['PING on a stream', encodeFrame(FrameType.PING, 0, 5, Buffer.alloc(8)), /on stream 5/],
    ['WINDOW on stream 0', encodeFrame(FrameType.WINDOW, 0, 0, Buffer.alloc(4)), /on stream 0/],
  ];
  it.each(bad)('rejects %s', (_name, msg, pattern) => {
    expect(() => decodeAll(msg)).toThrow(pattern);
  });

  it('has a 10 byte header', () => {
    expect(encodeHeader(FrameType.DATA, 0, 1, 0)).toHaveLength(HEADER_BYTES);
  });
});

describe('OPEN payload', () => {
  const open: OpenPayload = {
    protocol: 'tls',
    hostname: 'db.example.com',
    port: 443,
    initialWindow: 262144,
    client: { address: '2001:db8::1', port: 51234 },
    local: { address: '127.0.0.1', port: 443 },
  };
  it('round-trips', () => {
    expect(decodeOpen(encodeOpen(open))).toEqual(open);
  });
  const mutations: Array<[string, (b: Buffer) => Buffer, RegExp]> = [
    ['too short', (b) => b.subarray(0, 5), /too short/],
    [
      'unknown protocol',
      (b) => {
        b[0] = 9;
        return b;
      },
      /unknown protocol/,
    ],
    ['trailing bytes', (b) => Buffer.concat([b, Buffer.from([1])]), /trailing/],
    [
      'string overrun',
      (b) => {
        b[11] = 200;
        return b;
      },
      /overruns/,
    ],
  ];
  it.each(mutations)('rejects %s', (_n, mutate, pattern) => {
    expect(() => decodeOpen(mutate(encodeOpen(open)))).toThrow(pattern);
  });
  it('rejects a client address that is not an IP', () => {
    expect(() => decodeOpen(encodeOpen({ ...open, client: { address: 'evil', port: 1 } }))).toThrow(/not an IP/);
  });
});

describe('incremental frame decoding', () => {
  const message = Buffer.concat([
    encodeFrame(FrameType.WINDOW, 0, 3, Buffer.from([0, 1, 0, 0])),
    encodeFrame(FrameType.DATA, FLAG_BLOCKED, 3, Buffer.from('0123456789')),
    encodeFrame(FrameType.PING, 0, 0, Buffer.from('pingpong')),
    encodeHeader(FrameType.DATA, 0, 5, 0),
  ]);

  it.each([1, 3, 7, 11, message.length])(
    'gives the same frames when the message arrives in chunks of %i bytes',
    (size) => {
      const frames: Frame[] = [];
      const decoder = new FrameDecoder((f) => frames.push({ ...f, payload: Buffer.from(f.payload) }));
      for (let at = 0; at < message.length; at += size)
        decoder.push(message.subarray(at, at + size), at + size >= message.length);
      const data = frames.filter((f) => f.type === FrameType.DATA && f.streamId === 3);
      expect(Buffer.concat(data.map((f) => f.payload)).toString()).toBe('0123456789');
      // Only the piece that ends the frame carries its flags.
      expect(data.map((f) => f.flags).filter((flags) => flags !== 0)).toEqual([FLAG_BLOCKED]);
      expect(data.at(-1)!.flags).toBe(FLAG_BLOCKED);
      expect(frames.find((f) => f.type === FrameType.PING)!.payload.toString()).toBe('pingpong');
      expect(frames.find((f) => f.type === FrameType.WINDOW)!.payload).toEqual(Buffer.from([0, 1, 0, 0]));
      expect(frames.filter((f) => f.streamId === 5)).toHaveLength(1);
    },
  );

  it('refuses a frame that does not end with its message', () => {
    const decoder = new FrameDecoder(() => {});
    expect(() => decoder.push(encodeHeader(FrameType.DATA, 0, 3, 10), true)).toThrow(/truncated/);
  });
});
