/**
 * The agents a gateway currently admits, by certificate identity and serial, in a file the
 * controller keeps up to date (a ConfigMap on Kubernetes). A certificate stays valid until it
 * expires; this list is how a withdrawn grant stops working at once: when an ExposedService is
 * deleted or its grants change, its old certificate drops out of the list and the gateway
 * closes the session that used it. Without the file (standalone use), every certificate from
 * the gateway's CA is admitted.
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { z } from 'zod';
import { WebgwError } from '../common/errors.ts';

const schema = z.strictObject({
  agents: z.array(z.strictObject({ identity: z.string().max(253), serial: z.string().regex(/^[0-9A-Fa-f]{1,64}$/) })).max(100_000).default([]),
});

export type AuthorizedAgents = ReadonlySet<string>;

export function authorizationKey(identity: string, serial: string): string {
  return `${identity} ${serial.toUpperCase()}`;
}

export function parseAuthorizedAgents(text: string, source: string): AuthorizedAgents {
  const result = schema.safeParse(parse(text) ?? {});
  if (!result.success) {
    throw new WebgwError('WEBGW_ERR_CONFIG_INVALID', `${source}: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return new Set(result.data.agents.map((a) => authorizationKey(a.identity, a.serial)));
}

export async function loadAuthorizedAgents(file: string): Promise<AuthorizedAgents> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new WebgwError('WEBGW_ERR_CONFIG_READ', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseAuthorizedAgents(text, file);
}

export function renderAuthorizedAgents(agents: ReadonlyArray<{ identity: string; serial: string }>): string {
  const sorted = [...agents].sort((a, b) => authorizationKey(a.identity, a.serial).localeCompare(authorizationKey(b.identity, b.serial)));
  const lines = sorted.map((a) => `  - {identity: ${JSON.stringify(a.identity)}, serial: "${a.serial.toUpperCase()}"}`);
  return `# Agents this gateway admits (written by the webgw controller).\nagents:${lines.length ? `\n${lines.join('\n')}\n` : ' []\n'}`;
}
