import {
  CloseCode,
  MAX_HEADER_BYTES,
  Opcode,
  WebSocketParser,
  WebSocketProtocolError,
  controlFrame,
  writeFrameHeader,
} from '../../src/tunnel/websocket/frames.ts';

interface Seen {
  data: Buffer[];
  ends: boolean[];
  control: Array<[number, string]>;
}

function parser(role: 'client' | 'server', max = 1024 * 1024): { p: WebSocketParser; seen: Seen } {
  const seen: Seen = { data: [], ends: [], control: [] };
  const p = new WebSocketParser(role, max, {
    data: (chunk, end) => {
      seen.data.push(Buffer.from(chunk));
      seen.ends.push(end);
    },
    control: (opcode, payload) => seen.control.push([opcode, payload.toString()]),
  });
  return { p, seen };
}

/** One frame as a peer would send it; `mask` is the key a client uses (undefined: unmasked). */
function frame(opcode: number, payload: Buffer, opts: { fin?: boolean; mask?: Buffer; rsv?: number } = {}): Buffer {
  const masked = opts.mask !== undefined;
  const out = Buffer.alloc(MAX_HEADER_BYTES + payload.length);
  const start = writeFrameHeader(out, MAX_HEADER_BYTES, opcode, payload.length, masked);
  if (opts.fin === false) out[start] = (out[start] as number) & 0x7f;
  if (opts.rsv) out[start] = (out[start] as number) | opts.rsv;
  if (masked) opts.mask!.copy(out, MAX_HEADER_BYTES - 4);
  for (let i = 0; i < payload.length; i++)
    out[MAX_HEADER_BYTES + i] = (payload[i] as number) ^ (masked ? opts.mask![i % 4]! : 0);
  return out.subarray(start);
}

describe('WebSocket framing', () => {
  it('streams a masked message fed byte by byte, unmasking across pieces', () => {
    const { p, seen } = parser('server');
    const payload = Buffer.from('tunnel frames, unmasked in place');
    const bytes = frame(Opcode.BINARY, payload, { mask: Buffer.from([1, 2, 3, 4]) });
    for (let i = 0; i < bytes.length; i++) p.push(bytes.subarray(i, i + 1));
    expect(Buffer.concat(seen.data).toString()).toBe(payload.toString());
    expect(seen.ends.at(-1)).toBe(true);
    expect(seen.ends.slice(0, -1).every((e) => !e)).toBe(true);
  });

  it('passes 16- and 64-bit lengths and zero-key masks through without a copy of the message', () => {
    const { p, seen } = parser('server');
    const big = Buffer.alloc(70_000, 7);
    const bytes = Buffer.concat([
      frame(Opcode.BINARY, Buffer.alloc(300, 1), { mask: Buffer.alloc(4) }),
      frame(Opcode.BINARY, big, { mask: Buffer.alloc(4) }),
    ]);
    p.push(bytes);
    expect(seen.data.map((d) => d.length)).toEqual([300, 70_000]);
    expect(seen.ends).toEqual([true, true]);
  });

  it('joins a fragmented message and answers control frames between its fragments', () => {
    const { p, seen } = parser('client');
    p.push(
      Buffer.concat([
        frame(Opcode.BINARY, Buffer.from('ab'), { fin: false }),
        frame(Opcode.PING, Buffer.from('hi')),
        frame(Opcode.CONTINUATION, Buffer.from('cd')),
      ]),
    );
    expect(Buffer.concat(seen.data).toString()).toBe('abcd');
    expect(seen.ends).toEqual([false, true]);
    expect(seen.control).toEqual([[Opcode.PING, 'hi']]);
  });

  const bad: Array<[string, 'client' | 'server', Buffer, number, RegExp]> = [
    [
      'an unmasked frame from a client',
      'server',
      frame(Opcode.BINARY, Buffer.from('x')),
      CloseCode.PROTOCOL_ERROR,
      /unmasked/,
    ],
    [
      'a masked frame from a server',
      'client',
      frame(Opcode.BINARY, Buffer.from('x'), { mask: Buffer.alloc(4) }),
      CloseCode.PROTOCOL_ERROR,
      /masked frame from a server/,
    ],
    ['a text message', 'client', frame(Opcode.TEXT, Buffer.from('hello')), CloseCode.UNSUPPORTED_DATA, /text/],
    [
      'reserved bits (compression was not negotiated)',
      'client',
      frame(Opcode.BINARY, Buffer.from('x'), { rsv: 0x40 }),
      CloseCode.PROTOCOL_ERROR,
      /reserved/,
    ],
    ['an unknown opcode', 'client', frame(0x3, Buffer.from('x')), CloseCode.PROTOCOL_ERROR, /unknown opcode 3/],
    [
      'an oversized control frame',
      'client',
      Buffer.concat([Buffer.from([0x89, 126, 0, 200]), Buffer.alloc(200)]),
      CloseCode.PROTOCOL_ERROR,
      /control frame/,
    ],
    [
      'a fragmented control frame',
      'client',
      frame(Opcode.PING, Buffer.from('x'), { fin: false }),
      CloseCode.PROTOCOL_ERROR,
      /control frame/,
    ],
    [
      'a continuation without a message',
      'client',
      frame(Opcode.CONTINUATION, Buffer.from('x')),
      CloseCode.PROTOCOL_ERROR,
      /continuation/,
    ],
    [
      'a new message inside a fragmented one',
      'client',
      Buffer.concat([frame(Opcode.BINARY, Buffer.from('a'), { fin: false }), frame(Opcode.BINARY, Buffer.from('b'))]),
      CloseCode.PROTOCOL_ERROR,
      /inside/,
    ],
    [
      'a message over the limit (announced, not yet sent)',
      'client',
      Buffer.from([0x82, 127, 0, 0, 0, 0, 0, 0x20, 0, 0]),
      CloseCode.TOO_BIG,
      /larger than/,
    ],
    [
      'fragments that add up over the limit',
      'client',
      Buffer.concat([
        frame(Opcode.BINARY, Buffer.alloc(600), { fin: false }),
        frame(Opcode.CONTINUATION, Buffer.alloc(600)),
      ]),
      CloseCode.TOO_BIG,
      /larger than 1000/,
    ],
    [
      'a 64-bit length beyond 2^53',
      'client',
      Buffer.from([0x82, 127, 0xff, 0, 0, 0, 0, 0, 0, 1]),
      CloseCode.PROTOCOL_ERROR,
      /2\^53/,
    ],
  ];
  it.each(bad)('refuses %s with the right close code', (_name, role, bytes, code, message) => {
    const { p } = parser(role, 1000);
    let err: unknown;
    try {
      p.push(bytes);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WebSocketProtocolError);
    expect((err as WebSocketProtocolError).closeCode).toBe(code);
    expect((err as Error).message).toMatch(message);
  });

  it('builds control frames a parser reads back', () => {
    const { p, seen } = parser('server');
    p.push(controlFrame(Opcode.PONG, Buffer.from('pong payload'), true));
    expect(seen.control).toEqual([[Opcode.PONG, 'pong payload']]);
  });
});
