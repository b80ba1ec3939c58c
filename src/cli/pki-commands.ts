/** `webgw pki init` and `webgw pki issue`: credentials for standalone gateways and agents. */
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WebgwError } from '../common/errors.ts';
import { pkiUsage } from './usage.ts';
import { checkPort, hasRoutes } from '../pki/grants.ts';
import { createCA, issueAgentCertificate, issueServerCertificate } from '../pki/issue.ts';
import { readKeyPair, writeKeyPair } from '../pki/files.ts';

const HOUR = 3600_000;

export async function pkiCommand(args: string[], out: (line: string) => void): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'init') return pkiInit(rest, out);
  if (sub === 'issue') return pkiIssue(rest, out);
  throw new WebgwError('WEBGW_ERR_USAGE', pkiUsage);
}

function positiveNumber(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new WebgwError('WEBGW_ERR_USAGE', `--${name} must be a positive number, got ${JSON.stringify(value)}`);
  return n;
}

async function pkiInit(args: string[], out: (line: string) => void): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: 'string' },
      name: { type: 'string' },
      host: { type: 'string', multiple: true },
      days: { type: 'string' },
      'server-hours': { type: 'string' },
    },
  });
  if (!values.dir) throw new WebgwError('WEBGW_ERR_USAGE', `--dir is required\n${pkiUsage}`);
  const days = positiveNumber(values.days, 3650, 'days');
  const serverHours = positiveNumber(values['server-hours'], 90 * 24, 'server-hours');
  const ca = createCA(`${values.name ?? 'webgw'} CA`, { notAfter: new Date(Date.now() + days * 24 * HOUR) });
  const hosts = values.host && values.host.length > 0 ? values.host : ['localhost', '127.0.0.1'];
  const server = issueServerCertificate(ca, hosts, { notAfter: new Date(Date.now() + serverHours * HOUR) });
  await writeKeyPair(values.dir, 'ca', ca);
  await writeKeyPair(values.dir, 'gateway', server);
  out(`wrote ${join(values.dir, 'ca.crt')}, ca.key, gateway.crt, gateway.key (server names: ${hosts.join(', ')})`);
}

async function pkiIssue(args: string[], out: (line: string) => void): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: 'string' },
      out: { type: 'string' },
      http: { type: 'string', multiple: true },
      https: { type: 'string', multiple: true },
      tls: { type: 'string', multiple: true },
      'tls-terminated': { type: 'string', multiple: true },
      tcp: { type: 'string', multiple: true },
      h2c: { type: 'string', multiple: true },
      identity: { type: 'string' },
      hours: { type: 'string' },
    },
  });
  if (!values.dir || !values.out) throw new WebgwError('WEBGW_ERR_USAGE', `--dir and --out are required\n${pkiUsage}`);
  const hours = positiveNumber(values.hours, 24, 'hours');
  const tcp = (values.tcp ?? []).map((p) => checkPort(Number(p)));
  const grants = {
    http: values.http ?? [],
    https: values.https ?? [],
    tls: values.tls ?? [],
    tlsTerminated: values['tls-terminated'] ?? [],
    tcp,
    h2c: values.h2c ?? [],
    identity: values.identity ?? '',
  };
  if (!hasRoutes(grants))
    throw new WebgwError(
      'WEBGW_ERR_USAGE',
      'give at least one --http, --https, --tls, --tls-terminated or --tcp grant',
    );
  const ca = await readKeyPair(values.dir, 'ca');
  const agent = issueAgentCertificate(ca, grants, { notAfter: new Date(Date.now() + hours * HOUR) });
  await writeKeyPair(values.out, 'agent', agent);
  await copyFile(join(values.dir, 'ca.crt'), join(values.out, 'ca.crt'));
  out(`wrote ${join(values.out, 'agent.crt')}, agent.key, ca.crt (valid ${hours} h)`);
}
