import { HttpRequestError, RequestParser, type RequestHead } from '../../src/common/http/request-parser.ts';

interface Seen {
  heads: RequestHead[];
  bodies: string[];
  done: number;
}

function parser(maxHead = 4096): { p: RequestParser; seen: Seen } {
  const seen: Seen = { heads: [], bodies: [], done: 0 };
  const p = new RequestParser(maxHead, {
    head: (h) => {
      seen.heads.push(h);
      seen.bodies.push('');
    },
    body: (c) => {
      seen.bodies[seen.bodies.length - 1] += c.toString();
    },
    done: () => {
      seen.done += 1;
    },
  });
  return { p, seen };
}

/** Feeds `text` in pieces of `size` bytes, releasing each held head and request at once. */
function run(text: string, size: number): Seen {
  const { p, seen } = parser();
  const bytes = Buffer.from(text, 'latin1');
  let heads = 0;
  let done = 0;
  for (let at = 0; at < bytes.length; at += size) {
    p.feed(bytes.subarray(at, at + size));
    // The connection's part: continue after a head, next after a complete request.
    while (seen.heads.length > heads || seen.done > done) {
      if (seen.heads.length > heads) {
        heads = seen.heads.length;
        p.continue();
      }
      if (seen.done > done) {
        done = seen.done;
        p.next();
      }
    }
  }
  return seen;
}

describe('HTTP request parser', () => {
  const pipelined =
    'GET /a HTTP/1.1\r\nHost: x.test\r\n\r\n' +
    'POST /b HTTP/1.1\r\nHost: x.test\r\nContent-Length: 5\r\n\r\nhello' +
    'PUT /c HTTP/1.1\r\nHost: x.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n' +
    'GET /d HTTP/1.0\r\nHost: x.test\r\nConnection: keep-alive\r\n\r\n';

  it.each([1, 2, 7, 64, pipelined.length])('reads pipelined requests fed in pieces of %i bytes', (size) => {
    const seen = run(pipelined, size);
    expect(seen.heads.map((h) => `${h.method} ${h.target} ${h.version} ${h.keepAlive}`)).toEqual([
      'GET /a 1.1 true',
      'POST /b 1.1 true',
      'PUT /c 1.1 true',
      'GET /d 1.0 true',
    ]);
    expect(seen.bodies).toEqual(['', 'hello', 'abcde', '']);
    expect(seen.done).toBe(4);
    expect(seen.heads[2]!.framing).toEqual({ kind: 'chunked' });
  });

  it('holds the next request until the current one is released', () => {
    const { p, seen } = parser();
    p.feed(Buffer.from('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n'));
    expect(seen.heads).toHaveLength(1);
    p.continue();
    expect(seen.done).toBe(1);
    expect(seen.heads).toHaveLength(1);
    p.next();
    expect(seen.heads.map((h) => h.target)).toEqual(['/1', '/2']);
  });

  it('recognizes upgrades and Expect: 100-continue, and keeps the bytes after an upgrade head', () => {
    const { p, seen } = parser();
    p.feed(
      Buffer.from(
        'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00',
        'latin1',
      ),
    );
    expect(seen.heads[0]).toMatchObject({ upgrade: true, host: 'a' });
    expect(p.takeBuffered()).toEqual(Buffer.from([0x81, 0x00]));
    const other = parser();
    other.p.feed(Buffer.from('PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n'));
    expect(other.seen.heads[0]).toMatchObject({
      expectContinue: true,
      upgrade: false,
      framing: { kind: 'length', length: 1 },
    });
  });

  const bad: Array<[string, string, number, RegExp]> = [
    [
      'both Content-Length and Transfer-Encoding (smuggling)',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
      400,
      /both/,
    ],
    [
      'a coding that does not end in chunked',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n',
      400,
      /unsupported Transfer-Encoding/,
    ],
    [
      'a coding before chunked',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n',
      400,
      /unsupported Transfer-Encoding/,
    ],
    [
      'Transfer-Encoding in HTTP/1.0',
      'POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n',
      400,
      /HTTP\/1.0/,
    ],
    // Connection naming a framing or routing field: the backend would frame or route the
    // request differently from the gateway once the field is dropped as hop-by-hop (issue 12).
    [
      'Connection: Content-Length',
      'POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nGET /',
      400,
      /Connection header names content-length/,
    ],
    [
      'Connection: transfer-encoding',
      'POST / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n',
      400,
      /names transfer-encoding/,
    ],
    ['Connection: host', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n', 400, /names host/],
    [
      'a bare LF inside a header line',
      'GET / HTTP/1.1\r\nHost: a\r\nX: 1\nContent-Length: 5\r\n\r\n',
      400,
      /control character/,
    ],
    ['a bare CR inside a header value', 'GET / HTTP/1.1\r\nHost: a\r\nX: 1\r2\r\n\r\n', 400, /control character/],
    ['a control character in the target', 'GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n', 400, /request line/],
    ['an absolute target for another host', 'GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n', 400, /authority differs/],
    ['a target in authority form', 'GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n', 400, /bad request target/],
    ['CONNECT', 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n', 400, /CONNECT/],
    [
      'a chunk size with leading whitespace',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n',
      400,
      /chunk size/,
    ],
    [
      'a chunk size of 17 hex digits',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n',
      400,
      /chunk size/,
    ],
    [
      'a negative chunk size',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n',
      400,
      /chunk size/,
    ],
    [
      'a chunk line with a bare LF',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n',
      400,
      /control character/,
    ],
    [
      'a chunk line over 1 KiB',
      `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;${'x'.repeat(1100)}`,
      400,
      /too long/,
    ],
    [
      'a missing CRLF after chunk data',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n',
      400,
      /CRLF/,
    ],
    [
      'endless trailers',
      `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${'T: v\r\n'.repeat(20_000)}`,
      400,
      /trailers too large/,
    ],
    [
      'two different Content-Length values',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n',
      400,
      /Content-Length/,
    ],
    ['a negative Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', 400, /Content-Length/],
    ['two Host headers', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400, /Host/],
    ['a header without a colon', 'GET / HTTP/1.1\r\nHost a\r\n\r\n', 400, /bad header line/],
    ['whitespace before the colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400, /bad header line/],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n', 400, /bad header line/],
    ['HTTP/2 in the request line', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 400, /request line/],
    ['binary garbage', '\x00\x01\x02\xff\r\n\r\n', 400, /request line/],
    ['a bad chunk size', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400, /chunk size/],
    [
      'a head over the limit',
      `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`,
      431,
      /larger than 4096/,
    ],
    [
      'an endless head without its blank line',
      `GET / HTTP/1.1\r\n${'X-A: b\r\n'.repeat(600)}`,
      431,
      /larger than 4096/,
    ],
  ];
  it.each(bad)('refuses %s', (_name, text, status, message) => {
    const { p } = parser();
    let err: unknown;
    try {
      p.feed(Buffer.from(text, 'latin1'));
      p.continue();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HttpRequestError);
    expect((err as HttpRequestError).status).toBe(status);
    expect((err as Error).message).toMatch(message);
  });
});
