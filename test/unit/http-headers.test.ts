/**
 * The HTTP/1.1 proxy's header rules (proxy/http/headers.ts), as tables: Host parsing, what the
 * backend sees (hop-by-hop and Connection-named fields removed, X-Forwarded-* set by the gateway
 * whatever the client sent, X-Forwarded-For appended to) and what the client sees.
 */
import {
  forwardRequestHeaders,
  forwardResponseHeaders,
  hostFromHeader,
  serializeRequestHead,
} from '../../src/proxy/http/headers.ts';

const ctx = { clientAddress: '198.18.0.7', proto: 'https' as const, port: 443, upgrade: false };
const pairs = (raw: string[]): string[][] =>
  raw.reduce<string[][]>((out, v, i) => (i % 2 === 0 ? [...out, [v]] : [...out.slice(0, -1), [...out.at(-1)!, v]]), []);

describe('hostFromHeader', () => {
  it.each([
    ['Shop.Example.com', 'shop.example.com'],
    ['shop.example.com:8080', 'shop.example.com'],
    ['shop.example.com.', 'shop.example.com'],
    [undefined, undefined],
    ['', undefined],
    ['*.example.com', undefined],
    ['[::1]:80', undefined],
    ['exa mple.com', undefined],
    ['a'.repeat(300), undefined],
  ])('%j → %j', (host, expected) => {
    expect(hostFromHeader(host)).toBe(expected);
  });
});

describe('forwardRequestHeaders', () => {
  it.each([
    [
      'hop-by-hop fields go',
      [
        'Host',
        'a.example',
        'Connection',
        'keep-alive',
        'Keep-Alive',
        'timeout=5',
        'TE',
        'trailers',
        'Transfer-Encoding',
        'chunked',
        'Accept',
        '*/*',
      ],
      [
        ['Host', 'a.example'],
        ['Accept', '*/*'],
        ['X-Forwarded-For', '198.18.0.7'],
        ['X-Forwarded-Proto', 'https'],
        ['X-Forwarded-Host', 'a.example'],
        ['X-Forwarded-Port', '443'],
      ],
    ],
    [
      'fields the Connection header names go',
      ['Host', 'a.example', 'Connection', 'close, X-Secret', 'X-Secret', 'v'],
      [
        ['Host', 'a.example'],
        ['X-Forwarded-For', '198.18.0.7'],
        ['X-Forwarded-Proto', 'https'],
        ['X-Forwarded-Host', 'a.example'],
        ['X-Forwarded-Port', '443'],
      ],
    ],
    [
      'a client cannot pose as another scheme, host or address',
      [
        'Host',
        'a.example',
        'X-Forwarded-Proto',
        'http',
        'X-Forwarded-Host',
        'evil',
        'X-Real-IP',
        '1.2.3.4',
        'Forwarded',
        'for=1.2.3.4',
      ],
      [
        ['Host', 'a.example'],
        ['X-Forwarded-For', '198.18.0.7'],
        ['X-Forwarded-Proto', 'https'],
        ['X-Forwarded-Host', 'a.example'],
        ['X-Forwarded-Port', '443'],
      ],
    ],
    [
      'X-Forwarded-For is appended to, over several fields',
      ['Host', 'a.example', 'X-Forwarded-For', '10.0.0.1', 'x-forwarded-for', '10.0.0.2'],
      [
        ['Host', 'a.example'],
        ['X-Forwarded-For', '10.0.0.1, 10.0.0.2, 198.18.0.7'],
        ['X-Forwarded-Proto', 'https'],
        ['X-Forwarded-Host', 'a.example'],
        ['X-Forwarded-Port', '443'],
      ],
    ],
    [
      'no Host: no X-Forwarded-Host',
      ['Accept', '*/*'],
      [
        ['Accept', '*/*'],
        ['X-Forwarded-For', '198.18.0.7'],
        ['X-Forwarded-Proto', 'https'],
        ['X-Forwarded-Port', '443'],
      ],
    ],
  ])('%s', (_name, raw, expected) => {
    expect(pairs(forwardRequestHeaders(raw, ctx))).toEqual(expected);
  });

  it('keeps Connection and Upgrade for an Upgrade relayed as bytes', () => {
    const out = pairs(
      forwardRequestHeaders(['Host', 'a.example', 'Connection', 'Upgrade', 'Upgrade', 'websocket'], {
        ...ctx,
        upgrade: true,
      }),
    );
    expect(out.slice(0, 3)).toEqual([
      ['Host', 'a.example'],
      ['Connection', 'Upgrade'],
      ['Upgrade', 'websocket'],
    ]);
  });
});

describe('forwardResponseHeaders and serializeRequestHead', () => {
  it('drops hop-by-hop and Connection-named fields from responses, keeps the rest in order', () => {
    expect(
      pairs(
        forwardResponseHeaders([
          'Content-Type',
          'text/plain',
          'Connection',
          'X-Internal',
          'X-Internal',
          '1',
          'Transfer-Encoding',
          'chunked',
          'Set-Cookie',
          'a=1',
          'Set-Cookie',
          'b=2',
        ]),
      ),
    ).toEqual([
      ['Content-Type', 'text/plain'],
      ['Set-Cookie', 'a=1'],
      ['Set-Cookie', 'b=2'],
    ]);
  });

  it('writes a request head', () => {
    expect(serializeRequestHead('GET', '/x?y=1', '1.1', ['Host', 'a.example']).toString('latin1')).toBe(
      'GET /x?y=1 HTTP/1.1\r\nHost: a.example\r\n\r\n',
    );
  });
});
