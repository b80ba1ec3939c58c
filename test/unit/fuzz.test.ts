/**
 * Property-based fuzzing of every parser that reads bytes from someone we do not trust (issue 12):
 * HTTP request and response heads and bodies, TLS ClientHello, tunnel frames and OPEN payloads,
 * WebSocket frames, and the PROXY headers built from what a gateway says. For each: inputs made
 * from valid messages, the smuggling corpus and random bytes, mutated and cut at random places.
 * Properties: only the parser's own error type is ever thrown (never a TypeError or RangeError
 * that would escape), buffered bytes stay within the stated bounds, and how the bytes are split
 * into chunks never changes what is parsed. Each property runs for a bounded time.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import fc from 'fast-check';
import { WebgwError } from '../../src/common/errors.ts';
import { HttpRequestError, RequestParser } from '../../src/common/http/request-parser.ts';
import { ResponseParser } from '../../src/proxy/http/response-parser.ts';
import { MAX_HELLO_BYTES, parseClientHello } from '../../src/common/client-hello.ts';
import { FrameDecoder, encodeFrame, FrameType } from '../../src/tunnel/frame.ts';
import { decodeOpen, encodeOpen } from '../../src/tunnel/open.ts';
import { WebSocketParser, WebSocketProtocolError } from '../../src/tunnel/websocket/frames.ts';
import { proxyHeaderV1, proxyHeaderV2 } from '../../src/agent/proxy-protocol.ts';
import { smugglingVectors } from '../helpers/smuggling-corpus.ts';

/** Per property: stop after this many runs or this much time, whichever comes first. */
const RUNS = 5000;
const TIME_MS = 4000;
const params = { numRuns: RUNS, interruptAfterTimeLimit: TIME_MS, markInterruptAsFailure: false };
const figures: Array<{ parser: string; inputs: number; ms: number }> = [];
let peakRss = 0;

/** Runs a property, recording how many inputs it tried and for how long. */
function check<T>(parser: string, property: fc.IProperty<T>): void {
  const started = Date.now();
  let inputs = 0;
  const count = fc.beforeEach(() => {
    inputs++;
    if (inputs % 100 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
  });
  fc.assert(property, { ...params, plugins: [count] });
  figures.push({ parser, inputs, ms: Date.now() - started });
}

afterAll(() => {
  const total = figures.reduce((n, f) => n + f.inputs, 0);
  console.log(
    `fuzz: ${total} inputs in ${figures.reduce((n, f) => n + f.ms, 0)} ms, peak RSS ${(peakRss / 1048576).toFixed(0)} MiB\n${figures.map((f) => `  ${f.parser}: ${f.inputs} inputs, ${f.ms} ms`).join('\n')}`,
  );
});

/** Valid messages, mutated: bytes flipped, inserted, deleted, CRLF turned into LF, parts repeated. */
function mutated(seeds: readonly string[]): fc.Arbitrary<Buffer> {
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({
      kind: fc.constant('insert' as const),
      at: fc.nat(),
      text: fc.constantFrom(
        '\r\n',
        '\n',
        '\r',
        '\0',
        ' ',
        '\t',
        ':',
        ';',
        '0',
        'ffffffffff',
        'Transfer-Encoding: chunked\r\n',
        'Content-Length: 5\r\n',
        'Connection: content-length\r\n',
        '\r\n\r\n',
      ),
    }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
    fc.record({ kind: fc.constant('lf' as const) }),
    fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
  );
  return fc.tuple(fc.constantFrom(...seeds), fc.array(mutation, { maxLength: 4 })).map(([seed, mutations]) => {
    let text = seed;
    for (const m of mutations) {
      const at = text.length === 0 ? 0 : 'at' in m ? m.at % text.length : 0;
      if (m.kind === 'flip') text = text.slice(0, at) + String.fromCharCode(m.byte) + text.slice(at + 1);
      else if (m.kind === 'insert') text = text.slice(0, at) + m.text + text.slice(at);
      else if (m.kind === 'delete') text = text.slice(0, at) + text.slice(at + m.length);
      else if (m.kind === 'lf') text = text.replaceAll('\r\n', '\n');
      else text = text.slice(0, at) + text.slice(at, at + m.length).repeat(2) + text.slice(at + m.length);
    }
    return Buffer.from(text, 'latin1');
  });
}

/** Cut points for feeding `data` in pieces. */
const cuts = fc.array(fc.nat(), { maxLength: 8 });
function split(data: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => (data.length === 0 ? 0 : p % data.length)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const p of at) {
    pieces.push(data.subarray(from, p));
    from = p;
  }
  pieces.push(data.subarray(from));
  return pieces.filter((p) => p.length > 0);
}

const requestSeeds = [
  'GET / HTTP/1.1\r\nHost: a.example\r\n\r\n',
  'POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n\r\nhello',
  'POST /c HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n',
  'GET /ws HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
  'GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\nGET /2 HTTP/1.0\r\nHost: a.example\r\nConnection: keep-alive\r\n\r\n',
  ...smugglingVectors('a.example').map(([, r]) => r),
];

const MAX_HEAD = 4096;
/** Feeds pieces like the gateway's connection does; returns the event log (or the refusal). */
function parseRequests(pieces: Buffer[]): string[] {
  const log: string[] = [];
  const parser: RequestParser = new RequestParser(MAX_HEAD, {
    head: (h) => {
      log.push(`head ${h.method} ${h.target} ${h.host} ${h.framing?.kind ?? '-'} ${h.upgrade}`);
      queueMicrotask(() => undefined);
    },
    body: (c) => log.push(`body ${c.toString('latin1')}`),
    done: () => log.push('done'),
  });
  try {
    for (const piece of pieces) {
      parser.feed(piece);
      // As ClientConnection: let the body flow, then the next request, while there is progress.
      for (let guard = 0; guard < 64; guard++) {
        const before = log.length;
        parser.continue();
        parser.next();
        if (log.length === before) break;
      }
      // Bound: what it holds is at most a head's worth plus the piece that just came.
      if (parser.bufferedBytes > MAX_HEAD + piece.length + 1024) throw new Error(`holds ${parser.bufferedBytes} bytes`);
    }
  } catch (err) {
    if (!(err instanceof HttpRequestError)) throw err;
    log.push(`refused ${err.status}`);
  }
  // Body pieces may be cut differently: compare the bytes, not the pieces.
  return log.reduce<string[]>((out, e) => {
    const last = out.at(-1);
    if (e.startsWith('body ') && last?.startsWith('body ')) out[out.length - 1] = last + e.slice(5);
    else out.push(e);
    return out;
  }, []);
}

describe('fuzzing the parsers', () => {
  it('HTTP requests: only HttpRequestError, bounded, the same whatever the chunking', () => {
    check(
      'HTTP request',
      fc.property(
        fc.oneof(
          mutated(requestSeeds),
          fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
        ),
        cuts,
        (data, points) => {
          const whole = parseRequests([data]);
          const pieces = parseRequests(split(data, points));
          // A refusal may come earlier or later in the log when heads are cut, never a different parse.
          const strip = (log: string[]) => log.filter((e) => !e.startsWith('refused'));
          const wholeRefused = whole.some((e) => e.startsWith('refused'));
          if (!wholeRefused) expect(pieces).toEqual(whole);
          else expect(strip(pieces).slice(0, strip(whole).length)).toEqual(strip(whole));
        },
      ),
    );
  });

  it('HTTP responses: only WebgwError, the same whatever the chunking', () => {
    const seeds = [
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n',
      'HTTP/1.0 200 OK\r\n\r\nuntil close',
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00',
      'HTTP/1.1 200 OK\r\nX: a\nSet-Cookie: x\r\nContent-Length: 0\r\n\r\n',
    ];
    const run = (pieces: Buffer[], upgrade: boolean): string[] => {
      const log: string[] = [];
      const p = new ResponseParser(false, {
        head: (h) => log.push(`head ${h.status} ${h.bodyLength} ${h.keepAlive}`),
        body: (c) => log.push(`body ${c.toString('latin1')}`),
        done: () => log.push('done'),
        ...(upgrade ? { switched: (h, rest) => log.push(`switched ${h.status} ${rest.toString('latin1')}`) } : {}),
      });
      try {
        for (const piece of pieces) p.feed(piece);
        p.end();
      } catch (err) {
        if (!(err instanceof WebgwError)) throw err;
        log.push('refused');
      }
      return log.join('').split('refused')[0]!.replaceAll(/body /g, '').split('');
    };
    check(
      'HTTP response',
      fc.property(
        fc.oneof(
          mutated(seeds),
          fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
        ),
        cuts,
        fc.boolean(),
        (data, points, upgrade) => {
          const whole = run([data], upgrade);
          const pieces = run(split(data, points), upgrade);
          // What was parsed before any refusal is the same; a switch hands over the same rest.
          expect(pieces.join('').startsWith(whole.join('')) || whole.join('').startsWith(pieces.join(''))).toBe(true);
        },
      ),
    );
  });

  it('TLS ClientHello: only WebgwError, and never reads past its bound', async () => {
    // A real ClientHello with SNI, from Node's TLS client.
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const hello = new Promise<Buffer>((resolve) =>
      server.once('connection', (s) =>
        s.once('data', (d: Buffer) => {
          resolve(d);
          s.destroy();
        }),
      ),
    );
    const client = tlsConnect({
      port: (server.address() as AddressInfo).port,
      host: '127.0.0.1',
      servername: 'shop.example',
      ALPNProtocols: ['acme-tls/1', 'h2'],
    });
    client.on('error', () => {});
    const real = await hello;
    client.destroy();
    server.close();
    expect(parseClientHello(real)).toEqual({ state: 'done', sni: 'shop.example', alpn: ['acme-tls/1', 'h2'] });
    const seeds = [real.toString('latin1')];
    check(
      'TLS ClientHello',
      fc.property(
        fc.oneof(
          mutated(seeds),
          fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)),
        ),
        fc.nat(),
        (data, cut) => {
          for (const prefix of [data, data.subarray(0, data.length === 0 ? 0 : cut % data.length)]) {
            try {
              const r = parseClientHello(prefix);
              if (r.state === 'more') expect(prefix.length).toBeLessThanOrEqual(MAX_HELLO_BYTES + 5 * 8 + 5);
            } catch (err) {
              if (!(err instanceof WebgwError)) throw err;
            }
          }
        },
      ),
    );
  });

  it('tunnel frames: only WebgwError, the same whatever the chunking', () => {
    const frame = fc
      .record({
        type: fc.integer({ min: 0, max: 12 }),
        flags: fc.integer({ min: 0, max: 255 }),
        stream: fc.integer({ min: 0, max: 0xffffffff }),
        payload: fc.uint8Array({ maxLength: 1200 }),
      })
      .map((f) => encodeFrame(f.type as FrameType, f.flags, f.stream, Buffer.from(f.payload)));
    const message = fc.oneof(
      fc.array(frame, { maxLength: 6 }).map((fs) => Buffer.concat(fs)),
      fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
    );
    const run = (pieces: Buffer[]): string[] => {
      const log: Array<{ type: number; flags: number; stream: number; payload: string }> = [];
      const decoder = new FrameDecoder((f) => {
        const last = log.at(-1);
        // DATA payloads arrive in pieces as bytes do (flags on the last): merge consecutive ones.
        if (f.type === FrameType.DATA && last?.type === FrameType.DATA && last.stream === f.streamId) {
          last.payload += f.payload.toString('hex');
          last.flags |= f.flags;
        } else {
          log.push({ type: f.type, flags: f.flags, stream: f.streamId, payload: f.payload.toString('hex') });
        }
      });
      try {
        pieces.forEach((p, i) => decoder.push(p, i === pieces.length - 1));
      } catch (err) {
        if (!(err instanceof WebgwError)) throw err;
        return [JSON.stringify(log), 'refused'];
      }
      return [JSON.stringify(log)];
    };
    check(
      'tunnel frames',
      fc.property(message, cuts, (data, points) => {
        const whole = run(data.length > 0 ? [data] : []);
        const pieces = run(split(data, points));
        // Refused or not, the same: a frame is judged on its header, however the bytes came.
        expect(pieces[1]).toEqual(whole[1]);
        if (!whole[1]) expect(pieces[0]).toEqual(whole[0]);
      }),
    );
  });

  it('OPEN payloads: only WebgwError; what decodes re-encodes the same; PROXY headers stay one bounded line', () => {
    check(
      'OPEN + PROXY header',
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        let open;
        try {
          open = decodeOpen(Buffer.from(bytes));
        } catch (err) {
          if (!(err instanceof WebgwError)) throw err;
          return;
        }
        expect(decodeOpen(encodeOpen(open))).toEqual(open);
        const v1 = proxyHeaderV1(open).toString('latin1');
        expect(v1.length).toBeLessThanOrEqual(107); // the PROXY v1 maximum
        expect(v1.indexOf('\r\n')).toBe(v1.length - 2);
        const v2 = proxyHeaderV2(open);
        expect(v2.readUInt16BE(14)).toBe(v2.length - 16);
      }),
    );
  });

  it('tunnel sessions: any frame sequence from a peer ends at most that session', async () => {
    const request = {
      protocol: 'http' as const,
      hostname: 'a.example',
      port: 80,
      client: { address: '203.0.113.9', port: 4000 },
      local: { address: '198.18.0.1', port: 80 },
    };
    const frame = fc.oneof(
      fc
        .record({
          stream: fc.integer({ min: 0, max: 8 }).map((n) => n * 2),
          window: fc.integer({ min: 0, max: 0x7fffffff }),
        })
        .map((f) => encodeFrame(FrameType.OPEN, 0, f.stream, encodeOpen({ ...request, initialWindow: f.window }))),
      fc
        .record({
          type: fc.constantFrom(
            FrameType.DATA,
            FrameType.WINDOW,
            FrameType.FIN,
            FrameType.RESET,
            FrameType.PING,
            FrameType.PONG,
            FrameType.GOAWAY,
          ),
          flags: fc.integer({ min: 0, max: 3 }),
          stream: fc.integer({ min: 0, max: 16 }),
          payload: fc.uint8Array({ maxLength: 64 }),
        })
        .map((f) => encodeFrame(f.type, f.flags, f.stream, Buffer.from(f.payload))),
    );
    const started = Date.now();
    let inputs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { maxLength: 12 }), async (frames) => {
        inputs++;
        let deliver: (chunk: Buffer, end: boolean) => void = () => {};
        const transport = {
          headroom: 4,
          send: (_b: Buffer, _e: number, cb: (err?: Error) => void) => setImmediate(cb),
          close: () => {},
          terminate: () => {},
          onData: (h: (chunk: Buffer, end: boolean) => void) => {
            deliver = h;
          },
          onClose: () => {},
        };
        const { TunnelSession } = await import('../../src/tunnel/session.ts');
        const session = new TunnelSession(transport, { role: 'client', pingIntervalMs: 0 });
        session.on('stream', (st) => {
          st.accept();
          st.on('data', (c: Buffer) => st.write(c));
        });
        for (const f of frames) deliver(f, true);
        await new Promise((r) => setImmediate(r));
        session.destroy();
      }),
      { numRuns: 1000, interruptAfterTimeLimit: TIME_MS, markInterruptAsFailure: false },
    );
    figures.push({ parser: 'tunnel session', inputs, ms: Date.now() - started });
  });

  it('WebSocket frames: only WebSocketProtocolError, within the message bound', () => {
    check(
      'WebSocket frames',
      fc.property(
        fc.uint8Array({ maxLength: 3000 }),
        fc.constantFrom<'client' | 'server'>('client', 'server'),
        cuts,
        (bytes, role, points) => {
          let messageBytes = 0;
          const parser = new WebSocketParser(role, 1024, {
            data: (c, end) => {
              messageBytes += c.length;
              expect(messageBytes).toBeLessThanOrEqual(1024);
              if (end) messageBytes = 0;
            },
            control: (_op, payload) => expect(payload.length).toBeLessThanOrEqual(125),
          });
          try {
            for (const piece of split(Buffer.from(bytes), points)) parser.push(piece);
          } catch (err) {
            if (!(err instanceof WebSocketProtocolError)) throw err;
          }
        },
      ),
    );
  });
});
