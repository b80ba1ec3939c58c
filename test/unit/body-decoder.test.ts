/**
 * HTTP/1.1 body framing (proxy/http/body-decoder.ts), as tables: each message decoded whole and
 * fed in every split into two pieces, so the state machine gives the same body, the same count
 * of bytes it used and the same error wherever the network cuts the bytes.
 */
import { BodyDecoder, type Framing } from '../../src/common/http/body-decoder.ts';

interface Run {
  body: string;
  used: number;
  done: boolean;
  error?: string;
}

function decode(framing: Framing, pieces: readonly Buffer[], end = false, maxTrailerBytes?: number): Run {
  const parts: Buffer[] = [];
  let done = false;
  const decoder = new BodyDecoder(
    framing,
    {
      body: (c) => parts.push(Buffer.from(c)),
      done: () => {
        done = true;
      },
    },
    (why) => {
      throw new Error(why);
    },
    maxTrailerBytes,
  );
  let used = 0;
  try {
    decoder.start();
    for (const p of pieces) {
      if (decoder.done) break;
      used += decoder.feed(p);
    }
    if (end) decoder.end();
  } catch (err) {
    return { body: Buffer.concat(parts).toString('latin1'), used, done, error: (err as Error).message };
  }
  return { body: Buffer.concat(parts).toString('latin1'), used, done };
}

const CHUNKED: Framing = { kind: 'chunked' };
const cases: Array<[string, Framing, string, Partial<Run>]> = [
  [
    'a length body, then the next request',
    { kind: 'length', length: 5 },
    'helloGET / HTTP/1.1\r\n',
    { body: 'hello', used: 5, done: true },
  ],
  ['an empty length body', { kind: 'length', length: 0 }, 'GET', { body: '', used: 0, done: true }],
  [
    'chunked with an extension and a trailer',
    CHUNKED,
    '5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\nNEXT',
    { body: 'hello world', done: true },
  ],
  ['chunked, upper-case hex', CHUNKED, 'A\r\n0123456789\r\n0\r\n\r\n', { body: '0123456789', done: true }],
  [
    'a chunk size with trailing whitespace before the extension',
    CHUNKED,
    '3 \t;x\r\nabc\r\n0\r\n\r\n',
    { body: 'abc', done: true },
  ],
  ['whitespace before the chunk size', CHUNKED, ' 3\r\nabc\r\n0\r\n\r\n', { error: 'bad chunk size' }],
  ['a chunk size that is not hex', CHUNKED, 'zz\r\nab\r\n0\r\n\r\n', { error: 'bad chunk size' }],
  ['a chunk size too large for 32 bits', CHUNKED, '123456789\r\n', { error: 'bad chunk size' }],
  ['no CRLF after chunk data', CHUNKED, '3\r\nabcXY0\r\n\r\n', { error: 'missing CRLF after chunk data' }],
  [
    'a control character in a chunk line',
    CHUNKED,
    '3;\x00\r\nabc\r\n0\r\n\r\n',
    { error: 'control character in a chunk size line' },
  ],
  [
    'a control character in a trailer',
    CHUNKED,
    '0\r\nX: \x01\r\n\r\n',
    { error: 'control character in a trailer field' },
  ],
  ['a chunk size line past 1 KiB', CHUNKED, `1;${'x'.repeat(1100)}\r\n`, { error: 'chunk size line too long' }],
];

describe('BodyDecoder', () => {
  it.each(cases)('%s', (_name, framing, message, expected) => {
    const bytes = Buffer.from(message, 'latin1');
    const whole = decode(framing, [bytes]);
    expect(whole).toMatchObject({
      ...expected,
      ...(expected.error ? { error: expect.stringContaining(expected.error) } : {}),
    });
    // Every cut into two pieces gives the same outcome.
    for (let cut = 0; cut <= bytes.length; cut++) {
      const split = decode(framing, [bytes.subarray(0, cut), bytes.subarray(cut)]);
      // After an error the connection is closed: how much was used then does not matter.
      const outcome = (r: Run): Partial<Run> => (r.error ? { ...r, used: 0 } : r);
      expect({ cut, ...outcome(split) }).toEqual({ cut, ...outcome(whole) });
    }
  });

  it('says how many bytes were the body, so the rest stays with the caller', () => {
    const message = Buffer.from('5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\nNEXT', 'latin1');
    expect(decode(CHUNKED, [message]).used).toBe(message.length - 4);
  });

  it.each([
    [
      'a close-delimited body ends at the close',
      { kind: 'until-close' } as Framing,
      'all of it',
      true,
      { body: 'all of it', done: true },
    ],
    [
      'a length body cut short',
      { kind: 'length', length: 10 } as Framing,
      'short',
      true,
      { error: 'connection closed before the body was complete' },
    ],
    [
      'a chunked body cut short',
      CHUNKED,
      '5\r\nhel',
      true,
      { error: 'connection closed before the body was complete' },
    ],
  ])('%s', (_name, framing, message, end, expected) => {
    expect(decode(framing, [Buffer.from(message)], end)).toMatchObject(expected);
  });

  it('bounds the trailers', () => {
    const trailers = `0\r\n${'X-A: 1234567890\r\n'.repeat(20)}\r\n`;
    expect(decode(CHUNKED, [Buffer.from(trailers)], false, 100).error).toBe('trailers too large');
    expect(decode(CHUNKED, [Buffer.from(trailers)], false, 1000)).toMatchObject({ done: true });
  });
});
