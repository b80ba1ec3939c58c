import type { IncomingHttpHeaders } from 'node:http2';
import {
  http1RequestFields,
  http2RequestHeaders,
  http2ResponseHeaders,
  readRequestHead,
  relayedHeaders,
} from '../../src/proxy/http2/headers.ts';

const ctx = { clientAddress: '203.0.113.9', proto: 'https' as const, port: 443, upgrade: false };

describe('HTTP/2 request heads', () => {
  it.each([
    ['no :method', [':path', '/'], 'missing :method'],
    ['CONNECT', [':method', 'CONNECT', ':authority', 'a.example'], 'CONNECT is not served'],
    ['no :path', [':method', 'GET'], 'missing or invalid :path'],
    ['an absolute :path', [':method', 'GET', ':path', 'http://x/'], 'missing or invalid :path'],
    ['* for GET', [':method', 'GET', ':path', '*'], 'missing or invalid :path'],
  ])('refuses %s', (_what, raw, why) => {
    expect(readRequestHead(raw)).toBe(why);
  });

  it('reads :authority, else Host; joins split cookies; drops other pseudo-headers', () => {
    expect(
      readRequestHead([
        ':method',
        'GET',
        ':path',
        '/x',
        ':scheme',
        'https',
        ':authority',
        'a.example',
        'cookie',
        'a=1',
        'accept',
        '*/*',
        'cookie',
        'b=2',
      ]),
    ).toEqual({ method: 'GET', path: '/x', authority: 'a.example', fields: ['accept', '*/*', 'cookie', 'a=1; b=2'] });
    expect(readRequestHead([':method', 'OPTIONS', ':path', '*', 'host', 'b.example'])).toMatchObject({
      path: '*',
      authority: 'b.example',
    });
  });

  const head = {
    method: 'POST',
    path: '/svc/M',
    authority: 'api.example:443',
    fields: [
      'te',
      'trailers',
      'content-type',
      'application/grpc',
      'x-forwarded-for',
      '198.51.100.1',
      'x-forwarded-proto',
      'forged',
    ],
  };

  it('becomes HTTP/1.1 fields: Host first, te dropped, X-Forwarded-* set by the gateway', () => {
    expect(http1RequestFields(head, ctx)).toEqual([
      'Host',
      'api.example:443',
      'content-type',
      'application/grpc',
      'X-Forwarded-For',
      '198.51.100.1, 203.0.113.9',
      'X-Forwarded-Proto',
      'https',
      'X-Forwarded-Host',
      'api.example:443',
      'X-Forwarded-Port',
      '443',
    ]);
  });

  it('becomes an HTTP/2 request: te: trailers kept, no host field, lower-case names', () => {
    expect(http2RequestHeaders(head, ctx, 'https')).toEqual({
      ':method': 'POST',
      ':path': '/svc/M',
      ':scheme': 'https',
      ':authority': 'api.example:443',
      te: 'trailers',
      'content-type': 'application/grpc',
      'x-forwarded-for': '198.51.100.1, 203.0.113.9',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'api.example:443',
      'x-forwarded-port': '443',
    });
    expect(http2RequestHeaders({ ...head, fields: ['te', 'gzip'] }, ctx, 'http').te).toBeUndefined();
  });
});

describe('HTTP/2 response heads', () => {
  it('drops HTTP/1.1 hop-by-hop fields and keeps repeated ones as lists', () => {
    expect(
      http2ResponseHeaders(200, [
        'Content-Type',
        'text/plain',
        'Connection',
        'keep-alive, x-hop',
        'Keep-Alive',
        'timeout=5',
        'X-Hop',
        '1',
        'Transfer-Encoding',
        'chunked',
        'Set-Cookie',
        'a=1',
        'Set-Cookie',
        'b=2',
      ]),
    ).toEqual({ ':status': 200, 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] });
  });

  it('relays an HTTP/2 backend head with or without :status, never connection-specific fields', () => {
    const backend = {
      ':status': 200,
      'grpc-status': '0',
      connection: 'close',
      'content-type': 'application/grpc',
    } as unknown as IncomingHttpHeaders;
    expect(relayedHeaders(backend, true)).toEqual({
      ':status': 200,
      'grpc-status': '0',
      'content-type': 'application/grpc',
    });
    expect(relayedHeaders(backend, false)).toEqual({ 'grpc-status': '0', 'content-type': 'application/grpc' });
  });
});
