/**
 * Owner references in one place (as controller-runtime's SetControllerReference): the reference
 * the controller writes on what it creates, and the test for "did we create this for that
 * owner". The controller never adopts an object it did not create (issue 12): a user's Secret or
 * Deployment that happens to carry the name we would use stays untouched, and a condition says
 * what is in the way.
 */
import type { KubernetesObject, V1OwnerReference } from '@kubernetes/client-node';
import { API_VERSION } from '../../crds/types.ts';

export interface Owner {
  kind: 'Gateway' | 'ExposedService';
  name: string;
  uid?: string | undefined;
}

export function controllerReference(owner: Owner): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: owner.kind,
    name: owner.name,
    uid: owner.uid as string,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** True when `obj` carries our controller reference to exactly this owner (same uid). */
export function isControlledBy(obj: KubernetesObject | undefined, owner: Owner): boolean {
  return (
    obj?.metadata?.ownerReferences?.some(
      (r) => r.controller === true && r.kind === owner.kind && r.uid === owner.uid,
    ) === true
  );
}
