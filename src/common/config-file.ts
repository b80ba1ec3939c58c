/** Reads a YAML or JSON config file and validates it with a zod schema, with precise messages. */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { WebgwError } from './errors.ts';

export async function loadConfigFile<S extends z.ZodType>(file: string, schema: S): Promise<z.output<S>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new WebgwError('WEBGW_ERR_CONFIG_READ', `cannot read config ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new WebgwError('WEBGW_ERR_CONFIG_INVALID', `${file}: not valid YAML/JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseConfig(raw, schema, file);
}

export function parseConfig<S extends z.ZodType>(raw: unknown, schema: S, source: string): z.output<S> {
  const result = schema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new WebgwError('WEBGW_ERR_CONFIG_INVALID', `${source}: ${problems.join('; ')}`);
  }
  return result.data;
}

/** Relative file paths in a config are relative to the config file's folder. */
export function resolveFrom(configFile: string, path: string): string {
  return isAbsolute(path) ? path : resolve(dirname(configFile), path);
}
