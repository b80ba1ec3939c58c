/**
 * The agent certificates a gateway currently admits, by serial number, in a file the controller
 * keeps up to date (a ConfigMap on Kubernetes). A certificate stays valid until it expires; this
 * list is how a withdrawn grant stops working at once: when an ExposedService is deleted or its
 * grants change, its old certificate drops out of the list and the gateway closes the session
 * that used it. Without the file (standalone use), every certificate from the gateway's CA is
 * admitted.
 *
 * Serials only (random 127-bit numbers from the gateway's own CA, so unique): one line of ~33
 * bytes per admitted agent keeps 25,000 of them inside a ConfigMap (issue 12).
 */
import { readFile } from 'node:fs/promises';
import { WebgwError } from '../common/errors.ts';

export const ADMITTED_AGENTS_FILE = 'admitted-agents.txt';
const MAX_ENTRIES = 200_000;
const SERIAL = /^[0-9A-F]{1,64}$/;

export type AuthorizedAgents = ReadonlySet<string>;

export function normalizeSerial(serial: string): string {
  return serial.toUpperCase();
}

/** One serial per line; blank lines and `#` comments are ignored; anything else is an error. */
export function parseAuthorizedAgents(text: string, source: string): AuthorizedAgents {
  const serials = new Set<string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '' || line.startsWith('#')) continue;
    const serial = normalizeSerial(line);
    if (!SERIAL.test(serial))
      throw new WebgwError(
        'WEBGW_ERR_CONFIG_INVALID',
        `${source}:${i + 1}: not a certificate serial: ${JSON.stringify(line.slice(0, 80))}`,
      );
    serials.add(serial);
    if (serials.size > MAX_ENTRIES)
      throw new WebgwError('WEBGW_ERR_CONFIG_INVALID', `${source}: more than ${MAX_ENTRIES} serials`);
  }
  return serials;
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

export function renderAuthorizedAgents(serials: readonly string[]): string {
  const lines = [...new Set(serials.map(normalizeSerial))].sort();
  return `# Serial numbers of the agent certificates this gateway admits (written by the webgw controller).\n${lines.map((s) => `${s}\n`).join('')}`;
}
