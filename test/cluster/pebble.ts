/**
 * Pebble, Let's Encrypt's ACME test server, as the cluster tests run it (built by build.sh from
 * the Go module proxy), with pebble-challtestsrv as the DNS server it resolves every test name
 * with (to loopback): its validations really connect to the gateway's HTTP listener. Its own
 * HTTPS is served with a certificate of a CA made here (`caPem`: what the controller trusts);
 * the chains it issues end at its root (`rootPem()`: what clients verify against).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { createCA, issueServerCertificate, type KeyPairPem } from '../../src/pki/issue.ts';
import { freeWildcardPort } from '../helpers/ports.ts';
import { binDir } from './plane.ts';

export interface Pebble {
  directoryUrl: string;
  /** The CA of Pebble's own HTTPS (the directory): the controller's --acme-ca-file. */
  caPem: string;
  /** The root the issued chains end at. */
  rootPem(): Promise<string>;
  /** Stops Pebble (the DNS server stays); start() brings it back on the same ports. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface PebbleOptions {
  dir: string;
  /** The port validations dial for HTTP-01: the gateway's HTTP listener. */
  httpPort: number;
  tlsPort: number;
  /** Lifetime of issued certificates (default Pebble's: 5 years). */
  validitySeconds?: number;
  /** Where the ACME API listens (default loopback; the real nodes' pods reach the host elsewhere). */
  listenAddress?: string;
  /** The address every test name resolves to (default loopback). */
  namesResolveTo?: string;
}

function fetchText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, { ca, agent: false, headers: { 'user-agent': 'webgw-tests' } }, (res) => {
      let body = '';
      res
        .setEncoding('utf8')
        .on('data', (d: string) => {
          body += d;
        })
        .on('end', () =>
          res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: HTTP ${res.statusCode}`)),
        );
    })
      .on('error', reject)
      .end();
  });
}

async function waitUntilServing(url: string, ca: string, proc: ChildProcess, log: () => string): Promise<void> {
  const started = Date.now();
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`pebble exited: ${log()}`);
    try {
      await fetchText(url, ca);
      return;
    } catch {
      if (Date.now() - started > 20_000) throw new Error(`pebble did not serve ${url}: ${log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function startPebble(o: PebbleOptions): Promise<Pebble> {
  const ca: KeyPairPem = createCA('pebble test HTTPS', { notAfter: new Date(Date.now() + 24 * 3600_000) });
  const listen = o.listenAddress ?? '127.0.0.1';
  const serving = issueServerCertificate(ca, [...new Set(['localhost', '127.0.0.1', listen])], {
    notAfter: new Date(Date.now() + 24 * 3600_000),
  });
  writeFileSync(join(o.dir, 'pebble.crt'), serving.certPem);
  writeFileSync(join(o.dir, 'pebble.key'), serving.keyPem);
  const [acmePort, managementPort, dnsPort, challMgmtPort] = await Promise.all([
    freeWildcardPort(),
    freeWildcardPort(),
    freeWildcardPort(),
    freeWildcardPort(),
  ]);
  writeFileSync(
    join(o.dir, 'pebble.json'),
    JSON.stringify({
      pebble: {
        listenAddress: `${listen}:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: join(o.dir, 'pebble.crt'),
        privateKey: join(o.dir, 'pebble.key'),
        httpPort: o.httpPort,
        tlsPort: o.tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        retryAfter: { authz: 1, order: 1 },
        ...(o.validitySeconds
          ? {
              profiles: {
                default: { description: 'short-lived, for renewal tests', validityPeriod: o.validitySeconds },
              },
            }
          : {}),
      },
    }),
  );
  const output: string[] = [];
  const keep = (p: ChildProcess): void => {
    for (const s of [p.stdout, p.stderr])
      s?.setEncoding('utf8').on('data', (d: string) => {
        output.push(d);
        if (output.length > 200) output.shift();
      });
  };
  const dns = spawn(
    join(binDir(), 'pebble-challtestsrv'),
    [
      '-dnsserver',
      `127.0.0.1:${dnsPort}`,
      '-management',
      `127.0.0.1:${challMgmtPort}`,
      '-defaultIPv4',
      o.namesResolveTo ?? '127.0.0.1',
      '-defaultIPv6',
      '',
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-doh',
      '',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  keep(dns);
  let pebble: ChildProcess | undefined;
  const directoryUrl = `https://${listen}:${acmePort}/dir`;
  const start = async (): Promise<void> => {
    pebble = spawn(
      join(binDir(), 'pebble'),
      ['-config', join(o.dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        // Validate at once, no nonce rejections, and every order validated anew (no reused authz).
        env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
      },
    );
    keep(pebble);
    await waitUntilServing(directoryUrl, ca.certPem, pebble, () => output.join('').slice(-2000));
  };
  const stop = async (): Promise<void> => {
    const p = pebble;
    pebble = undefined;
    if (!p || p.exitCode !== null) return;
    p.kill('SIGTERM');
    await once(p, 'exit');
  };
  await start();
  return {
    directoryUrl,
    caPem: ca.certPem,
    rootPem: () => fetchText(`https://127.0.0.1:${managementPort}/roots/0`, ca.certPem),
    stop,
    start,
    close: async () => {
      await stop();
      dns.kill('SIGTERM');
      if (dns.exitCode === null) await once(dns, 'exit');
    },
  };
}
