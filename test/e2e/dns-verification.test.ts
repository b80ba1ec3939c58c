/**
 * Proof of control of a hostname against a real DNS server (dnsmasq from Debian, installed by
 * .ci/run): the controller's verifier finds the namespace's TXT record, and nothing else counts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { systemClock } from '../../src/common/clock.ts';
import { HostnameVerifier, challengeRecord, verificationValue } from '../../src/controller/trust/verification.ts';
import { waitFor } from '../helpers/fixture.ts';
import { freeWildcardPort } from '../helpers/ports.ts';

describe('hostname verification with a real DNS server', () => {
  let dns: ChildProcess;
  let resolver: Resolver;

  beforeAll(async () => {
    const port = await freeWildcardPort();
    dns = spawn(
      'dnsmasq',
      [
        '--keep-in-foreground',
        '--no-resolv',
        '--no-hosts',
        '--conf-file=/dev/null',
        '--bind-interfaces',
        '--listen-address=127.0.0.1',
        `--port=${port}`,
        '--user=root',
        `--txt-record=${challengeRecord('shop.example')},${verificationValue('uid-a')}`,
        `--txt-record=${challengeRecord('two.example')},v=spf1 -all`,
        `--txt-record=${challengeRecord('two.example')},${verificationValue('uid-a')}`,
        `--txt-record=${challengeRecord('other.example')},webgw-verification=0000`,
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    resolver = new Resolver({ timeout: 1000, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    await waitFor(
      async () => (await resolver.resolveTxt(challengeRecord('shop.example')).catch(() => [])).length > 0,
      10_000,
      'dnsmasq',
    );
  });

  afterAll(() => {
    dns.kill();
  });

  it.each([
    ['the namespace that published the record', 'shop.example', 'uid-a', true],
    ['one of several records on the name', 'two.example', 'uid-a', true],
    ['a wildcard, proven on its base name', '*.shop.example', 'uid-a', true],
    ['another namespace', 'shop.example', 'uid-b', false],
    ['a record with another value', 'other.example', 'uid-a', false],
    ['a name without a record (NXDOMAIN)', 'nothing.example', 'uid-a', false],
  ])('%s', async (_name, hostname, uid, expected) => {
    const verifier = new HostnameVerifier((n) => resolver.resolveTxt(n), systemClock);
    await verifier.refresh([{ hostname, namespaceUid: uid }]);
    expect(verifier.verified(hostname, uid)).toBe(expected);
  });
});
