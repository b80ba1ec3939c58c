/** Helm against the test control plane, and the ServiceMonitor CRD build.sh fetched. */
import { join } from 'node:path';
import { binDir } from './plane.ts';
import { runAgainstPlane, runAgainstPlaneOk, type KubectlResult } from './helpers.ts';

export const CHART = join(__dirname, '../../charts/webgw');
export const HELM = join(binDir(), 'helm');
export const SERVICEMONITOR_CRD = join(binDir(), '..', 'crds', 'monitoring.coreos.com_servicemonitors.yaml');

export function helm(args: string[], input?: string): Promise<KubectlResult> {
  return runAgainstPlane(HELM, args, input, 120_000);
}

export function helmOk(args: string[], input?: string): Promise<string> {
  return runAgainstPlaneOk(HELM, args, input, 120_000);
}
