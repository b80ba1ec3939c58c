/**
 * The installation's anchor. The controller creates two objects in its own namespace that no
 * Gateway owns: the leader Lease and the webhook's TLS Secret. They name the
 * MutatingWebhookConfiguration (cluster-scoped, installed by Helm or `kubectl apply -k` with the
 * rest) as their owner, so uninstalling removes them too: the garbage collector deletes them once
 * the configuration is gone (issue 13: `helm uninstall` left both behind).
 */
import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import { statusCode, type KubeClient } from './kube.ts';

/** The owner reference to the webhook configuration; undefined when it is not installed. */
export async function installationOwner(
  client: KubeClient,
  configurationName: string,
): Promise<V1OwnerReference | undefined> {
  try {
    const config = await client.admission.readMutatingWebhookConfiguration({ name: configurationName });
    const uid = config.metadata?.uid;
    return uid
      ? {
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'MutatingWebhookConfiguration',
          name: configurationName,
          uid,
        }
      : undefined;
  } catch (err) {
    if (statusCode(err) === 404) return undefined;
    throw err;
  }
}

/** Whether an object already names this owner (by uid). */
export function ownedBy(meta: V1ObjectMeta | undefined, owner: V1OwnerReference | undefined): boolean {
  return owner === undefined || (meta?.ownerReferences ?? []).some((r) => r.uid === owner.uid);
}

/** The object's owner references with this owner added (others kept). */
export function withOwner(
  meta: V1ObjectMeta | undefined,
  owner: V1OwnerReference | undefined,
): V1OwnerReference[] | undefined {
  if (!owner) return meta?.ownerReferences;
  return [
    ...(meta?.ownerReferences ?? []).filter(
      (r) => r.uid !== owner.uid && !(r.kind === owner.kind && r.name === owner.name),
    ),
    owner,
  ];
}
