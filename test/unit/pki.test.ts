import { X509Certificate } from 'node:crypto';
import {
  grantsFromUris,
  grantsToUris,
  hostnameMatches,
  normalizeHostname,
  parseSubjectAltName,
} from '../../src/pki/grants.ts';
import { createCA, issueAgentCertificate, issueServerCertificate } from '../../src/pki/issue.ts';
import { verifyAgentCertificate } from '../../src/pki/verify.ts';

const hour = 3600_000;
const inHours = (h: number) => new Date(Date.now() + h * hour);

describe('grants', () => {
  it('round-trips through SAN URIs', () => {
    const g = {
      http: ['Shop.Example.com.'],
      https: ['shop.example.com'],
      tls: ['db.example.com'],
      tlsTerminated: ['raw.example.com'],
      h2c: ['shop.example.com'],
      tcp: [20001],
      identity: 'shop/web/1234-abcd',
    };
    const uris = grantsToUris(g);
    expect(uris).toEqual([
      'webgw:http:shop.example.com',
      'webgw:https:shop.example.com',
      'webgw:tls:db.example.com',
      'webgw:tls-terminated:raw.example.com',
      'webgw:h2c:shop.example.com',
      'webgw:tcp:20001',
      'webgw:id:shop/web/1234-abcd',
    ]);
    expect(grantsFromUris([...uris, 'spiffe://other/ignored'])).toEqual({ ...g, http: ['shop.example.com'] });
  });

  it('issues no h2c grant for a name that is not served over HTTP', () => {
    expect(() =>
      grantsToUris({
        http: [],
        https: [],
        tls: ['db.example.com'],
        tlsTerminated: [],
        h2c: ['db.example.com'],
        tcp: [],
        identity: '',
      }),
    ).toThrow(/names no http or https grant/);
  });

  it.each([
    ['webgw:http:bad_host!'],
    ['webgw:tcp:70000'],
    ['webgw:tcp:12a'],
    ['webgw:smtp:x'],
    ['webgw:http:*.com'],
    ['webgw:http:a.*.example.com'],
  ])('rejects %s', (uri) => {
    expect(() => grantsFromUris([uri])).toThrow(/invalid|unknown/);
  });

  it.each([
    ['*.example.com', 'a.example.com', true],
    ['*.example.com', 'a.b.example.com', false],
    ['*.example.com', 'example.com', false],
    ['shop.example.com', 'shop.example.com', true],
    ['shop.example.com', 'shop.example.org', false],
  ])('%s matches %s: %s', (pattern, host, expected) => {
    expect(hostnameMatches(pattern, host)).toBe(expected);
  });

  it('normalizes case and the trailing dot', () => {
    expect(normalizeHostname('Hello.LocalHost.')).toBe('hello.localhost');
  });

  it('parses Node SAN text, quoted values included', () => {
    expect(parseSubjectAltName('URI:webgw:http:a.example, DNS:x, URI:"webgw:id:a, b"')).toEqual([
      { type: 'URI', value: 'webgw:http:a.example' },
      { type: 'DNS', value: 'x' },
      { type: 'URI', value: 'webgw:id:a, b' },
    ]);
  });
});

/** The serial INTEGER's content bytes as encoded (Node's serialNumber would hide leading zeros). */
function derSerial(raw: Buffer): Buffer {
  let o = 0;
  const header = (): { tag: number; len: number } => {
    const tag = raw[o++] as number;
    let len = raw[o++] as number;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (raw[o++] as number);
    }
    return { tag, len };
  };
  header(); // Certificate
  header(); // TBSCertificate
  const version = header();
  if (version.tag === 0xa0) o += version.len;
  else o -= 2;
  const serial = header();
  if (serial.tag !== 0x02) throw new Error('no serial INTEGER');
  return raw.subarray(o, o + serial.len);
}

describe('certificates', () => {
  const ca = createCA('gw-a', { notAfter: inHours(24) });
  const otherCa = createCA('gw-b', { notAfter: inHours(24) });
  const caCert = new X509Certificate(ca.certPem);
  const grants = {
    http: ['hello.localhost'],
    https: [],
    tls: ['db.localhost'],
    tlsTerminated: [],
    h2c: [],
    tcp: [20001],
    identity: 'ns/hello/uid',
  };

  it('gives every certificate a positive, minimally encoded 16-byte serial (strict DER)', () => {
    for (let i = 0; i < 32; i++) {
      const pair =
        i % 2 === 0
          ? issueServerCertificate(ca, ['a.localhost'], { notAfter: inHours(1) })
          : issueAgentCertificate(ca, grants, { notAfter: inHours(1) });
      const serial = derSerial(new X509Certificate(pair.certPem).raw);
      expect(serial).toHaveLength(16);
      expect(serial[0]).toBeGreaterThanOrEqual(0x40);
      expect(serial[0]).toBeLessThanOrEqual(0x7f);
    }
  });

  it('issues an agent certificate whose grants verify', () => {
    const agent = issueAgentCertificate(ca, grants, { notAfter: inHours(1) });
    const verified = verifyAgentCertificate(new X509Certificate(agent.certPem), caCert, new Date());
    expect(verified.grants).toEqual(grants);
    expect(verified.notAfter.getTime()).toBeGreaterThan(Date.now());
  });

  it('refuses a certificate from another CA', () => {
    const agent = issueAgentCertificate(otherCa, grants, { notAfter: inHours(1) });
    expect(() => verifyAgentCertificate(new X509Certificate(agent.certPem), caCert, new Date())).toThrow(
      expect.objectContaining({ code: 'WEBGW_ERR_CERT_UNTRUSTED' }),
    );
  });

  it('refuses an expired certificate', () => {
    const agent = issueAgentCertificate(ca, grants, { notBefore: inHours(-3), notAfter: inHours(-1) });
    expect(() => verifyAgentCertificate(new X509Certificate(agent.certPem), caCert, new Date())).toThrow(
      expect.objectContaining({ code: 'WEBGW_ERR_CERT_EXPIRED' }),
    );
  });

  it('refuses a server certificate as an agent', () => {
    const server = issueServerCertificate(ca, ['127.0.0.1'], { notAfter: inHours(1) });
    expect(() => verifyAgentCertificate(new X509Certificate(server.certPem), caCert, new Date())).toThrow(
      /client authentication/,
    );
  });

  it('issues server certificates for IPs and names, chained to the CA', () => {
    const server = new X509Certificate(
      issueServerCertificate(ca, ['127.0.0.1', 'gw.example.net'], { notAfter: inHours(1) }).certPem,
    );
    expect(server.checkIssued(caCert)).toBe(true);
    expect(server.subjectAltName).toBe('IP Address:127.0.0.1, DNS:gw.example.net');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });
});
