/**
 * PROXY protocol headers (agent/proxy-protocol.ts, HAProxy's spec v1 and v2), as tables: the
 * text of v1, and v2's bytes, including the IPv6 forms the hand-written parser must read
 * (compressed, embedded IPv4, upper case, zeros at either end).
 */
import { proxyHeaderV1, proxyHeaderV2 } from '../../src/agent/proxy-protocol.ts';

const ends = (client: string, local: string) => ({
  client: { address: client, port: 51000 },
  local: { address: local, port: 443 },
});

describe('PROXY protocol v1', () => {
  it.each([
    ['IPv4', '198.18.0.7', '198.18.0.1', 'PROXY TCP4 198.18.0.7 198.18.0.1 51000 443\r\n'],
    ['IPv6', '2001:db8::7', '2001:db8::1', 'PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n'],
    ['mixed families', '198.18.0.7', '2001:db8::1', 'PROXY UNKNOWN\r\n'],
    ['no address', '', '198.18.0.1', 'PROXY UNKNOWN\r\n'],
  ])('%s', (_name, client, local, text) => {
    expect(proxyHeaderV1(ends(client, local)).toString('latin1')).toBe(text);
  });
});

describe('PROXY protocol v2', () => {
  const SIGNATURE = '0d0a0d0a000d0a515549540a';
  it('IPv4: PROXY over TCP4, 12 address bytes', () => {
    expect(proxyHeaderV2(ends('198.18.0.7', '198.18.0.1')).toString('hex')).toBe(
      `${SIGNATURE}2111000cc6120007c6120001c73801bb`,
    );
  });

  it('mixed families: LOCAL, unspecified', () => {
    expect(proxyHeaderV2(ends('198.18.0.7', '::1')).toString('hex')).toBe(`${SIGNATURE}20000000`);
  });

  it.each([
    ['2001:db8::7', '20010db8000000000000000000000007'],
    ['::1', '00000000000000000000000000000001'],
    ['::', '00000000000000000000000000000000'],
    ['fe80::', 'fe800000000000000000000000000000'],
    ['2001:DB8:0:0:1:0:0:1', '20010db8000000000001000000000001'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
    ['::ffff:198.18.0.7', '00000000000000000000ffffc6120007'],
    ['64:ff9b::198.18.0.7', '0064ff9b0000000000000000c6120007'],
  ])('IPv6 source %s', (address, hex) => {
    const header = proxyHeaderV2(ends(address, '::1'));
    expect(header.subarray(12, 16).toString('hex')).toBe('21210024');
    expect(header.subarray(16, 32).toString('hex')).toBe(hex);
    expect(header.subarray(32, 48).toString('hex')).toBe('00000000000000000000000000000001');
    expect([header.readUInt16BE(48), header.readUInt16BE(50), header.length]).toEqual([51000, 443, 52]);
  });
});
