/**
 * "Skip writes that change nothing" (docs/architecture.md, Controller), in one place: every object we apply
 * carries the hash of what we applied; when the live object still carries the hash of what we
 * would write now, nothing is sent. The hash is over canonical JSON, so key order never matters.
 */
import { createHash } from 'node:crypto';
import type { KubernetesObject, V1ObjectMeta, V1Secret } from '@kubernetes/client-node';
import type { KubeClient } from './kube.ts';

export const APPLIED_HASH = 'webgw.io/applied-hash';

/** JSON with sorted keys: equal objects give equal strings whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}

/** `obj` with the APPLIED_HASH annotation of its own content (the hash leaves itself out). */
export function withAppliedHash<T extends KubernetesObject>(obj: T): T {
  const meta = obj.metadata ?? {};
  const { [APPLIED_HASH]: _previous, ...annotations } = meta.annotations ?? {};
  const content = { ...obj, metadata: { ...meta, annotations } as V1ObjectMeta };
  if (Object.keys(annotations).length === 0) delete content.metadata.annotations;
  const hash = createHash('sha256').update(canonicalJson(content)).digest('hex').slice(0, 32);
  return { ...obj, metadata: { ...meta, annotations: { ...annotations, [APPLIED_HASH]: hash } } };
}

/**
 * Server-side applies `obj` unless `liveHash` (the APPLIED_HASH annotation of the live object,
 * from a cache or a read) says it is already there. Returns whether it wrote.
 */
export async function applyIfChanged(
  client: KubeClient,
  obj: KubernetesObject,
  liveHash: string | undefined,
): Promise<boolean> {
  const stamped = withAppliedHash(obj);
  if (liveHash === appliedHashOf(stamped)) return false;
  await client.apply(stamped);
  return true;
}

export function appliedHashOf(obj: KubernetesObject | undefined): string | undefined {
  return obj?.metadata?.annotations?.[APPLIED_HASH];
}

/** A Secret value as text; undefined when the key is absent. */
export function secretText(secret: V1Secret | undefined, key: string): string | undefined {
  const v = secret?.data?.[key];
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
}
