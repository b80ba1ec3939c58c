import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatDuration, parseDuration } from '../../src/cli/durations.ts';
import { pkiCommand } from '../../src/cli/pki-commands.ts';

const HOUR = 3_600_000;

describe('command-line durations', () => {
  it.each([
    ['500ms', 500],
    ['15s', 15_000],
    ['1.5s', 1500],
    ['10m', 600_000],
    ['24h', 24 * HOUR],
    ['90d', 90 * 24 * HOUR],
    [' 2s ', 2000],
  ])('%j is %d ms', (value, ms) => {
    expect(parseDuration('--x', value, 1, 1e12)).toBe(ms);
  });

  it.each([
    ['15000', 'a bare number: the unit is required'],
    ['15 s', 'a space inside'],
    ['-5s', 'negative'],
    ['5w', 'an unknown unit'],
    ['', 'empty'],
    ['1e3ms', 'an exponent'],
    ['2s', 'below the minimum'],
    ['11m', 'above the maximum'],
  ])('refuses %j (%s) with a usage error naming the flag and the range', (value) => {
    expect(() => parseDuration('--lease-duration', value, 3000, 600_000)).toThrow(
      expect.objectContaining({
        code: 'WEBGW_ERR_USAGE',
        message: expect.stringMatching(/^--lease-duration takes a duration from 3s to 10m/),
      }),
    );
  });

  it.each([
    [86_400_000, '1d'],
    [3 * HOUR, '3h'],
    [90_000, '90s'],
    [1500, '1500ms'],
  ])('formats %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('webgw pki: validity flags', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'webgw-pki-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const lifetimeMs = async (file: string): Promise<number> => {
    const cert = new X509Certificate(await readFile(file));
    return Date.parse(cert.validTo) - Date.now();
  };

  it('issues certificates valid as long as asked', async () => {
    const out: string[] = [];
    await pkiCommand(['init', '--dir', dir, '--ca-validity', '30d', '--server-validity', '2d'], (l) => out.push(l));
    await pkiCommand(
      ['issue', '--dir', dir, '--out', join(dir, 'a'), '--http', 'a.example', '--validity', '90m'],
      (l) => out.push(l),
    );
    expect(await lifetimeMs(join(dir, 'ca.crt'))).toBeGreaterThan(29 * 24 * HOUR);
    expect(await lifetimeMs(join(dir, 'ca.crt'))).toBeLessThanOrEqual(30 * 24 * HOUR);
    expect(await lifetimeMs(join(dir, 'gateway.crt'))).toBeGreaterThan(47 * HOUR);
    expect(await lifetimeMs(join(dir, 'gateway.crt'))).toBeLessThanOrEqual(48 * HOUR);
    expect(await lifetimeMs(join(dir, 'a', 'agent.crt'))).toBeGreaterThan(89 * 60_000);
    expect(out.at(-1)).toMatch(/valid 90m\)$/);
  });

  it('refuses a server certificate that outlives its CA, and a unitless validity', async () => {
    await expect(
      pkiCommand(['init', '--dir', dir, '--ca-validity', '1d', '--server-validity', '2d'], () => {}),
    ).rejects.toThrow(/--server-validity takes a duration from 1h to 1d/);
    await expect(pkiCommand(['init', '--dir', dir, '--ca-validity', '3650'], () => {})).rejects.toThrow(/unit/);
  });
});
