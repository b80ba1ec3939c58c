import { ResponseParser, type ResponseHead } from '../../src/proxy/http/response-parser.ts';

interface Parsed {
  heads: ResponseHead[];
  body: string;
  done: boolean;
}

/** Feeds `input` in pieces of `step` bytes (1 = byte by byte), then optionally the end of stream. */
function parse(input: string, opts: { head?: boolean; step?: number; eof?: boolean } = {}): Parsed {
  const out: Parsed = { heads: [], body: '', done: false };
  const parser = new ResponseParser(opts.head ?? false, {
    head: (h) => out.heads.push(h),
    body: (c) => (out.body += c.toString('latin1')),
    done: () => (out.done = true),
  });
  const bytes = Buffer.from(input, 'latin1');
  const step = opts.step ?? bytes.length;
  for (let i = 0; i < bytes.length; i += step) parser.feed(bytes.subarray(i, i + step));
  if (opts.eof) parser.end();
  return out;
}

describe('HTTP response parser', () => {
  const ok: Array<[string, string, { head?: boolean; eof?: boolean }, Partial<ResponseHead>, string]> = [
    [
      'Content-Length',
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
      {},
      { status: 200, keepAlive: true },
      'hello',
    ],
    [
      'chunked with extensions and trailers',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n',
      {},
      { keepAlive: true },
      'hello world',
    ],
    ['close-delimited', 'HTTP/1.1 200 OK\r\n\r\nuntil the end', { eof: true }, { keepAlive: false }, 'until the end'],
    [
      'Connection: close',
      'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok',
      {},
      { keepAlive: false },
      'ok',
    ],
    ['HTTP/1.0 without keep-alive', 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok', {}, { keepAlive: false }, 'ok'],
    [
      'HTTP/1.0 with keep-alive',
      'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok',
      {},
      { keepAlive: true },
      'ok',
    ],
    ['204 has no body', 'HTTP/1.1 204 No Content\r\n\r\n', {}, { status: 204, keepAlive: true }, ''],
    [
      '304 has no body despite Content-Length',
      'HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n',
      {},
      { status: 304 },
      '',
    ],
    [
      'HEAD response has no body',
      'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n',
      { head: true },
      { status: 200 },
      '',
    ],
    [
      '100 Continue is skipped',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx',
      {},
      { status: 201 },
      'x',
    ],
    ['empty reason phrase', 'HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n', {}, { status: 200, statusMessage: '' }, ''],
  ];
  it.each(ok)('parses %s', (_name, input, opts, head, body) => {
    for (const step of [undefined, 1, 3]) {
      const r = parse(input, { ...opts, ...(step ? { step } : {}) });
      expect(r.heads).toHaveLength(1);
      expect(r.heads[0]).toMatchObject(head);
      expect(r.body).toBe(body);
      expect(r.done).toBe(true);
    }
  });

  it('keeps raw header names and values', () => {
    const r = parse(
      'HTTP/1.1 200 OK\r\nX-Custom-Name:  spaced value \r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n',
    );
    expect(r.heads[0]!.rawHeaders).toEqual([
      'X-Custom-Name',
      'spaced value',
      'Set-Cookie',
      'a=1',
      'Set-Cookie',
      'b=2',
      'Content-Length',
      '0',
    ]);
  });

  const bad: Array<[string, string, boolean, RegExp]> = [
    ['a bad status line', 'HTTP/2 200 OK\r\n\r\n', false, /bad status line/],
    ['garbage', 'hello there\r\n\r\n', false, /bad status line/],
    [
      'conflicting Content-Length',
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
      false,
      /Content-Length/,
    ],
    ['a negative Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', false, /Content-Length/],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n', false, /bad header line/],
    ['space before colon', 'HTTP/1.1 200 OK\r\nX : a\r\n\r\n', false, /bad header line/],
    ['a bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', false, /chunk size/],
    [
      'a missing CRLF after chunk data',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n',
      false,
      /CRLF/,
    ],
    ['data after the response', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab', false, /after the end/],
    ['a truncated body', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab', true, /closed before/],
    ['an oversized head', `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70_000)}\r\n\r\n`, false, /larger than/],
    ['101 on a plain request', 'HTTP/1.1 101 Switching Protocols\r\n\r\n', false, /101/],
    // Framing doubt is a refusal: the stream is then never pooled (issue 12, smuggling).
    [
      'both Content-Length and Transfer-Encoding',
      'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n',
      false,
      /both/,
    ],
    [
      'a Connection header naming Content-Length',
      'HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 1\r\n\r\na',
      false,
      /framing field/,
    ],
    [
      'a Connection header naming Transfer-Encoding',
      'HTTP/1.1 200 OK\r\nConnection: close, transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      false,
      /framing field/,
    ],
    // Response splitting: values that downstream parsers would cut into two fields or responses.
    [
      'a bare LF in a header value',
      'HTTP/1.1 200 OK\r\nX: a\nSet-Cookie: evil=1\r\nContent-Length: 0\r\n\r\n',
      false,
      /control character/,
    ],
    [
      'a NUL in a header value',
      'HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n',
      false,
      /control character/,
    ],
    [
      'a bare CR in a header value',
      'HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n',
      false,
      /control character/,
    ],
    [
      'a control character in the reason phrase',
      'HTTP/1.1 200 O\nK\r\nContent-Length: 0\r\n\r\n',
      false,
      /status line/,
    ],
    [
      'a header name that is not a token',
      'HTTP/1.1 200 OK\r\nX(y): a\r\nContent-Length: 0\r\n\r\n',
      false,
      /bad header line/,
    ],
    [
      'a chunk size line with a bare LF',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\n;x\r\na\r\n0\r\n\r\n',
      false,
      /control character/,
    ],
  ];
  it.each(bad)('rejects %s', (_name, input, eof, pattern) => {
    expect(() => parse(input, { eof })).toThrow(pattern);
  });

  it('hands a 101 to an upgrade request with the bytes that follow, and stops parsing', () => {
    const seen: Array<{ status: number; rest: string }> = [];
    const p = new ResponseParser(false, {
      head: () => {
        throw new Error('not a plain response');
      },
      body: () => {},
      done: () => {},
      switched: (head, rest) => seen.push({ status: head.status, rest: rest.toString('latin1') }),
    });
    p.feed(
      Buffer.from(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00',
        'latin1',
      ),
    );
    expect(seen).toEqual([{ status: 101, rest: '\x81\x00' }]);
  });
});
