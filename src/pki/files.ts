/** Reading and writing PEM files for standalone use (`webgw pki ...`, the demo). */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WebgwError } from '../common/errors.ts';
import type { KeyPairPem } from './issue.ts';

/** Writes `<name>.crt` (0644) and `<name>.key` (0600) into `dir`. */
export async function writeKeyPair(
  dir: string,
  name: string,
  pair: KeyPairPem,
): Promise<{ certFile: string; keyFile: string }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await writeFile(certFile, pair.certPem, { mode: 0o644 });
  await writeFile(keyFile, pair.keyPem, { mode: 0o600 });
  return { certFile, keyFile };
}

export async function readKeyPair(dir: string, name: string): Promise<KeyPairPem> {
  try {
    return {
      certPem: await readFile(join(dir, `${name}.crt`), 'utf8'),
      keyPem: await readFile(join(dir, `${name}.key`), 'utf8'),
    };
  } catch (err) {
    throw new WebgwError(
      'WEBGW_ERR_CREDENTIALS',
      `cannot read ${name}.crt/${name}.key in ${dir}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
