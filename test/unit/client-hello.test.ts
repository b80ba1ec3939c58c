/**
 * The ClientHello reader (common/client-hello.ts) the gateway routes by and the agent answers
 * ACME validations by, as tables over hellos built here byte by byte: SNI and ALPN found in any
 * order and across records, 'more' until the hello is complete, and each malformation named.
 */
import { MAX_HELLO_BYTES, parseClientHello, tlsAlert } from '../../src/common/client-hello.ts';

const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const u24 = (n: number): Buffer => Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff]);
const ext = (type: number, body: Buffer): Buffer => Buffer.concat([u16(type), u16(body.length), body]);
const sni = (name: string): Buffer => {
  const entry = Buffer.concat([Buffer.from([0]), u16(name.length), Buffer.from(name, 'latin1')]);
  return ext(0, Buffer.concat([u16(entry.length), entry]));
};
const alpn = (...protocols: string[]): Buffer => {
  const list = Buffer.concat(protocols.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])));
  return ext(16, Buffer.concat([u16(list.length), list]));
};
/** A ClientHello body with these extensions (undefined: none at all), as one handshake message. */
function hello(extensions?: Buffer[]): Buffer {
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7),
    Buffer.from([0]),
    u16(2),
    Buffer.from([0x13, 0x01]),
    Buffer.from([1, 0]),
    ...(extensions ? [u16(Buffer.concat(extensions).length), ...extensions] : []),
  ]);
  return Buffer.concat([Buffer.from([1]), u24(body.length), body]);
}
/** Handshake bytes in TLS records of at most `size` bytes each. */
function records(handshake: Buffer, size = 16384): Buffer {
  const out: Buffer[] = [];
  for (let o = 0; o < handshake.length; o += size) {
    const part = handshake.subarray(o, o + size);
    out.push(Buffer.concat([Buffer.from([22, 3, 1]), u16(part.length), part]));
  }
  return Buffer.concat(out);
}

describe('parseClientHello', () => {
  it.each([
    ['SNI only', [sni('shop.example')], 'shop.example', []],
    ['ALPN then SNI', [alpn('h2', 'http/1.1'), sni('shop.example')], 'shop.example', ['h2', 'http/1.1']],
    ['an ACME validation', [sni('pay.example'), alpn('acme-tls/1')], 'pay.example', ['acme-tls/1']],
    [
      'other extensions around them',
      [ext(10, Buffer.from([0, 2, 0, 29])), sni('a.example'), ext(43, Buffer.from([2, 3, 4])), alpn('h2')],
      'a.example',
      ['h2'],
    ],
    ['an empty extension list', [], undefined, []],
    ['no extensions at all', undefined, undefined, []],
  ])('%s', (_name, extensions, expectedSni, expectedAlpn) => {
    expect(parseClientHello(records(hello(extensions)))).toEqual({
      state: 'done',
      sni: expectedSni,
      alpn: expectedAlpn,
    });
  });

  it('reads a hello spread over several records, and asks for more until it is complete', () => {
    const bytes = records(hello([sni('split.example'), alpn('h2')]), 20);
    for (let cut = 0; cut < bytes.length; cut++) expect(parseClientHello(bytes.subarray(0, cut)).state).toBe('more');
    expect(parseClientHello(bytes)).toEqual({ state: 'done', sni: 'split.example', alpn: ['h2'] });
  });

  const truncatedSni = ext(0, Buffer.concat([u16(10), Buffer.from([0]), u16(40), Buffer.from('abc')]));
  it.each([
    ['not a handshake record', Buffer.from([23, 3, 3, 0, 5, 1, 2, 3, 4, 5]), 'is not handshake'],
    ['not TLS', Buffer.from([22, 9, 3, 0, 5, 1, 2, 3, 4, 5]), 'not a TLS record'],
    [
      'a handshake that is not a ClientHello',
      records(Buffer.concat([Buffer.from([2]), u24(4), Buffer.alloc(4)])),
      'is not ClientHello',
    ],
    ['a zero-length record', Buffer.from([22, 3, 1, 0, 0]), 'record length 0'],
    [
      'a hello too large',
      records(Buffer.concat([Buffer.from([1]), u24(MAX_HELLO_BYTES + 10), Buffer.alloc(10)])),
      'too large',
    ],
    ['a server name overrunning its extension', records(hello([truncatedSni])), 'server name overruns'],
    [
      'an ALPN list whose length is wrong',
      records(hello([ext(16, Buffer.from([0, 9, 2, 104, 50]))])),
      'ALPN list length',
    ],
    ['an empty ALPN protocol name', records(hello([ext(16, Buffer.from([0, 1, 0]))])), 'ALPN protocol name overruns'],
    [
      'an extension overrunning the list',
      records(hello([Buffer.concat([u16(99), u16(50), Buffer.alloc(4)])])),
      'extension overruns',
    ],
  ])('%s is refused', (_name, bytes, why) => {
    let outcome: string;
    try {
      outcome = JSON.stringify(parseClientHello(bytes));
    } catch (err) {
      outcome = (err as Error).message;
    }
    expect(outcome).toContain(why);
  });

  it('writes fatal alerts', () => {
    expect([...tlsAlert('unrecognized_name')]).toEqual([21, 3, 3, 0, 2, 2, 112]);
    expect([...tlsAlert('handshake_failure')]).toEqual([21, 3, 3, 0, 2, 2, 40]);
  });
});
