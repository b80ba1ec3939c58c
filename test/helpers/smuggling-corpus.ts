/**
 * Known request-smuggling and parser-confusion vectors (RFC 9112 §11.2; the CL.TE / TE.CL /
 * TE.TE families and their obfuscations from published research; chunk-line and line-ending
 * tricks), each followed by a request for `/smuggled`. A gateway that frames requests exactly
 * answers each with one response or a 4xx, and no backend ever sees `/smuggled` as a request of
 * its own. Shared by the fuzz suite (parser level) and the end-to-end hostile tests (wire level).
 */
export const SMUGGLED_PATH = '/smuggled';

/** Every vector for a gateway route `host`: `[name, bytes to send on one connection]`. */
export function smugglingVectors(host: string): Array<[name: string, request: string]> {
  const SMUGGLED = `GET ${SMUGGLED_PATH} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
  const n = SMUGGLED.length;
  const hex = n.toString(16);
  const post = (headers: string, body: string): string =>
    `POST /vector HTTP/1.1\r\nHost: ${host}\r\n${headers}\r\n${body}`;
  return [
    ['CL.TE', post('Content-Length: 6\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${SMUGGLED}`)],
    ['TE.CL', post('Transfer-Encoding: chunked\r\nContent-Length: 4\r\n', `${hex}\r\n${SMUGGLED}\r\n0\r\n\r\n`)],
    ['TE.TE: xchunked', post('Transfer-Encoding: xchunked\r\nContent-Length: 4\r\n', `0\r\n\r\n${SMUGGLED}`)],
    ['TE.TE: space before colon', post('Transfer-Encoding : chunked\r\nContent-Length: 4\r\n', `0\r\n\r\n${SMUGGLED}`)],
    ['TE.TE: two TE headers', post('Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n', `0\r\n\r\n${SMUGGLED}`)],
    ['TE.TE: tab', post('Transfer-Encoding:\tchunked\r\nContent-Length: 4\r\n', `0\r\n\r\n${SMUGGLED}`)],
    ['TE.TE: obs-fold', post('X: y\r\n Transfer-Encoding: chunked\r\nContent-Length: 4\r\n', `0\r\n\r\n${SMUGGLED}`)],
    [
      'TE.TE: bare LF before the header',
      post('X: y\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n', `0\r\n\r\n${SMUGGLED}`),
    ],
    ['TE.TE: LF before the colon', post('Transfer-Encoding\n: chunked\r\n', `0\r\n\r\n${SMUGGLED}`)],
    [
      'TE in HTTP/1.0',
      `POST /vector HTTP/1.0\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
    ],
    ['Connection: Content-Length', post(`Connection: Content-Length\r\nContent-Length: ${n}\r\n`, SMUGGLED)],
    [
      'Connection: Transfer-Encoding',
      post('Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n', `${hex}\r\n${SMUGGLED}\r\n0\r\n\r\n`),
    ],
    ['Connection: Host', `GET /vector HTTP/1.1\r\nHost: ${host}\r\nConnection: host\r\n\r\n${SMUGGLED}`],
    ['chunk size ZZ', post('Transfer-Encoding: chunked\r\n', `ZZ\r\n${SMUGGLED}`)],
    ['chunk size -1', post('Transfer-Encoding: chunked\r\n', `-1\r\n${SMUGGLED}`)],
    [
      'chunk size of 17 hex digits',
      post('Transfer-Encoding: chunked\r\n', `100000000000000${hex}\r\n${SMUGGLED}\r\n0\r\n\r\n`),
    ],
    ['chunk size 0x prefix', post('Transfer-Encoding: chunked\r\n', `0x${hex}\r\n${SMUGGLED}\r\n0\r\n\r\n`)],
    ['bare LF chunk framing', post('Transfer-Encoding: chunked\r\n', `${hex}\n${SMUGGLED}\n0\n\n`)],
    ['bare LF inside a chunk extension', post('Transfer-Encoding: chunked\r\n', `0;x\n${SMUGGLED}\r\n0\r\n\r\n`)],
    [
      'chunk line over 1 KiB',
      post('Transfer-Encoding: chunked\r\n', `5;${'x'.repeat(1200)}\r\nhello\r\n0\r\n\r\n${SMUGGLED}`),
    ],
    ['missing CRLF after chunk data', post('Transfer-Encoding: chunked\r\n', `5\r\nhelloXX${SMUGGLED}`)],
    ['two Content-Length values', post(`Content-Length: 0\r\nContent-Length: ${n}\r\n`, SMUGGLED)],
    ['Content-Length with a sign', post('Content-Length: +37\r\n', SMUGGLED)],
    ['Content-Length list', post('Content-Length: 0, 37\r\n', SMUGGLED)],
    ['NUL in a header value', `GET /vector HTTP/1.1\r\nHost: ${host}\r\nX: a\0b\r\n\r\n${SMUGGLED}`],
    [
      'bare CR in a header value',
      `GET /vector HTTP/1.1\r\nHost: ${host}\r\nX: a\rContent-Length: ${n}\r\n\r\n${SMUGGLED}`,
    ],
    ['absolute target for another host', `GET http://other.example/ HTTP/1.1\r\nHost: ${host}\r\n\r\n${SMUGGLED}`],
    ['HTTP/0.9 request line', `GET /vector\r\n\r\n${SMUGGLED}`],
    ['valid request then garbage', `GET /vector HTTP/1.1\r\nHost: ${host}\r\n\r\n\x00\x01\x02garbage\r\n\r\n`],
    [
      'valid request then an oversized one',
      `GET /vector HTTP/1.1\r\nHost: ${host}\r\n\r\nGET / HTTP/1.1\r\nHost: ${host}\r\nX: ${'a'.repeat(70_000)}\r\n\r\n`,
    ],
    [
      'valid request then a bad chunked one',
      `GET /vector HTTP/1.1\r\nHost: ${host}\r\n\r\n${post('Transfer-Encoding: chunked\r\n', `ZZ\r\n${SMUGGLED}`)}`,
    ],
    ['upgrade with a body', post(`Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: ${n}\r\n`, SMUGGLED)],
  ];
}
