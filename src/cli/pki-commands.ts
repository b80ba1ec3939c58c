/** `webgw pki init` and `webgw pki issue`: credentials for standalone gateways and agents. */
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WebgwError } from '../common/errors.ts';
import { formatDuration, parseDuration } from './durations.ts';
import { pkiUsage } from './usage.ts';
import { checkPort, hasRoutes } from '../pki/grants.ts';
import { createCA, issueAgentCertificate, issueServerCertificate } from '../pki/issue.ts';
import { readKeyPair, writeKeyPair } from '../pki/files.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export async function pkiCommand(args: string[], out: (line: string) => void): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'init') return pkiInit(rest, out);
  if (sub === 'issue') return pkiIssue(rest, out);
  throw new WebgwError('WEBGW_ERR_USAGE', pkiUsage);
}

async function pkiInit(args: string[], out: (line: string) => void): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: 'string' },
      name: { type: 'string' },
      host: { type: 'string', multiple: true },
      'ca-validity': { type: 'string', default: '3650d' },
      'server-validity': { type: 'string', default: '90d' },
    },
  });
  if (!values.dir) throw new WebgwError('WEBGW_ERR_USAGE', `--dir is required\n${pkiUsage}`);
  const caMs = parseDuration('--ca-validity', values['ca-validity'], HOUR, 100 * 365 * DAY);
  const serverMs = parseDuration('--server-validity', values['server-validity'], HOUR, caMs);
  const ca = createCA(`${values.name ?? 'webgw'} CA`, { notAfter: new Date(Date.now() + caMs) });
  const hosts = values.host && values.host.length > 0 ? values.host : ['localhost', '127.0.0.1'];
  const server = issueServerCertificate(ca, hosts, { notAfter: new Date(Date.now() + serverMs) });
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
      validity: { type: 'string', default: '24h' },
    },
  });
  if (!values.dir || !values.out) throw new WebgwError('WEBGW_ERR_USAGE', `--dir and --out are required\n${pkiUsage}`);
  const validityMs = parseDuration('--validity', values.validity, 60_000, 10 * 365 * DAY);
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
  const agent = issueAgentCertificate(ca, grants, { notAfter: new Date(Date.now() + validityMs) });
  await writeKeyPair(values.out, 'agent', agent);
  await copyFile(join(values.dir, 'ca.crt'), join(values.out, 'ca.crt'));
  out(`wrote ${join(values.out, 'agent.crt')}, agent.key, ca.crt (valid ${formatDuration(validityMs)})`);
}
