/**
 * Keeps the webgw CRDs at the schema this controller was built with. Helm installs a chart's
 * `crds/` once and never upgrades them; so the leader applies its own CRDs (server-side, and
 * only when the schema hash that manifests.ts stamps on each CRD differs from the live one), and
 * `helm upgrade` to a new version upgrades the CRDs through the new controller. A rollback's
 * controller writes its own schema back the same way. `webgw controller --manage-crds`; RBAC:
 * get and patch on exactly these CRDs (crdRules in rbac.ts), never create or delete.
 */
import type { V1CustomResourceDefinition } from '@kubernetes/client-node';
import { describeError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { allCrds } from '../crds/schemas.ts';
import { applyIfChanged, appliedHashOf } from './runtime/apply.ts';
import { statusCode, type KubeClient } from './runtime/kube.ts';

export const CRD_NAMES = allCrds.map((crd) => (crd.metadata as { name: string }).name);

/** Returns the names of the CRDs it wrote. A CRD that is not installed is reported, not created. */
export async function upgradeCrds(client: KubeClient, logger: Logger): Promise<string[]> {
  const written: string[] = [];
  for (const crd of allCrds) {
    const name = (crd.metadata as { name: string }).name;
    let live: V1CustomResourceDefinition;
    try {
      live = await client.apiextensions.readCustomResourceDefinition({ name });
    } catch (err) {
      if (statusCode(err) === 404) {
        logger.error('CRD not installed; install the chart (or deploy/) first', { crd: name });
        continue;
      }
      logger.warn('cannot read CRD', { crd: name, err: describeError(err) });
      continue;
    }
    if (await applyIfChanged(client, crd, appliedHashOf(live))) {
      logger.info("CRD upgraded to this controller's schema", { crd: name });
      written.push(name);
    }
  }
  return written;
}
