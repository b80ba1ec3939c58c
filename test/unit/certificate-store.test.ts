/** Which certificate the gateway terminates a name with, and which pairs it refuses to load. */
import { writeFileSync } from 'node:fs';
import { writeKeyPair } from '../../src/pki/files.ts';
import { createCA, issueServerCertificate } from '../../src/pki/issue.ts';
import { CertificateStore, MAX_FILE_BYTES, certificateCovers } from '../../src/proxy/certificate-store.ts';
import { TempDir } from '../helpers/fixture.ts';

const HOUR = 3600_000;
const now = new Date();
const at = (h: number): Date => new Date(now.getTime() + h * HOUR);

describe('CertificateStore', () => {
  const ca = createCA('store CA', { notAfter: at(100) });
  let dir: TempDir;
  beforeEach(() => {
    dir = new TempDir();
  });
  afterEach(() => dir.remove());

  it.each([
    // [hostname, name of the pair that serves it, or undefined]
    ['shop.example.com', 'exact'],
    ['api.example.com', 'wildcard-long'],
    ['a.b.example.com', undefined],
    ['example.com', undefined],
    ['other.test', undefined],
  ])('serves %s with %s', async (host, expected) => {
    await writeKeyPair(dir.path, 'exact', issueServerCertificate(ca, ['shop.example.com'], { notAfter: at(1) }));
    await writeKeyPair(dir.path, 'wildcard-short', issueServerCertificate(ca, ['*.example.com'], { notAfter: at(2) }));
    await writeKeyPair(dir.path, 'wildcard-long', issueServerCertificate(ca, ['*.example.com'], { notAfter: at(48) }));
    const store = new CertificateStore(dir.path);
    expect(await store.reload(now)).toEqual({ loaded: 3, skipped: [] });
    expect(store.find(host, now)?.name).toBe(expected);
  });

  it.each([
    [
      'a key of another certificate',
      (d: TempDir) => {
        writeFileSync(d.file('p.crt'), issueServerCertificate(ca, ['p.test'], { notAfter: at(1) }).certPem);
        writeFileSync(d.file('p.key'), issueServerCertificate(ca, ['q.test'], { notAfter: at(1) }).keyPem);
      },
      /key does not belong/,
    ],
    [
      'an expired certificate',
      (d: TempDir) =>
        writeKeyPair(d.path, 'p', issueServerCertificate(ca, ['p.test'], { notBefore: at(-3), notAfter: at(-1) })),
      /expired/,
    ],
    [
      'a certificate not valid yet',
      (d: TempDir) =>
        writeKeyPair(d.path, 'p', issueServerCertificate(ca, ['p.test'], { notBefore: at(1), notAfter: at(3) })),
      /not valid before/,
    ],
    [
      'garbage',
      (d: TempDir) => {
        writeFileSync(d.file('p.crt'), 'not a certificate');
        writeFileSync(d.file('p.key'), 'not a key');
      },
      /./,
    ],
    [
      'a file over the size bound',
      (d: TempDir) => {
        writeFileSync(d.file('p.crt'), Buffer.alloc(MAX_FILE_BYTES + 1, 0x41));
        writeFileSync(d.file('p.key'), 'x');
      },
      /larger than/,
    ],
  ])('skips %s and serves the rest', async (_what, write, why) => {
    await write(dir);
    await writeKeyPair(dir.path, 'good', issueServerCertificate(ca, ['good.test'], { notAfter: at(1) }));
    const store = new CertificateStore(dir.path);
    const result = await store.reload(now);
    expect(result.loaded).toBe(1);
    expect(result.skipped).toEqual([{ name: 'p', why: expect.stringMatching(why) }]);
    expect(store.find('good.test', now)?.name).toBe('good');
    expect(store.find('p.test', now)).toBeUndefined();
  });

  it('ignores files that are not pairs, and a missing folder serves nothing', async () => {
    await writeKeyPair(dir.path, 'good', issueServerCertificate(ca, ['good.test'], { notAfter: at(1) }));
    writeFileSync(dir.file('lonely.crt'), 'x');
    writeFileSync(dir.file('..data'), 'x');
    const store = new CertificateStore(dir.path);
    expect(await store.reload(now)).toEqual({ loaded: 1, skipped: [] });
    expect(await store.files()).toEqual([dir.file('good.crt'), dir.file('good.key')]);
    const missing = new CertificateStore(dir.file('nope'));
    expect(await missing.reload(now)).toEqual({ loaded: 0, skipped: [] });
  });

  it('stops serving a certificate once it expires, and reload replaces the set', async () => {
    await writeKeyPair(dir.path, 'soon', issueServerCertificate(ca, ['x.test'], { notAfter: at(1) }));
    const store = new CertificateStore(dir.path);
    await store.reload(now);
    expect(store.find('x.test', at(0.5))?.name).toBe('soon');
    expect(store.find('x.test', at(2))).toBeUndefined();
    await writeKeyPair(dir.path, 'soon', issueServerCertificate(ca, ['y.test'], { notAfter: at(1) }));
    await store.reload(now);
    expect(store.find('x.test', now)).toBeUndefined();
    const served = store.find('y.test', now);
    expect(served && certificateCovers(served, 'y.test')).toBe(true);
    expect(served && certificateCovers(served, 'x.test')).toBe(false);
  });
});
