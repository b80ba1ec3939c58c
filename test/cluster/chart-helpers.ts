/** Helm against the test control plane, and the ServiceMonitor CRD build.sh fetched. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { binDir } from './plane.ts';
import { plane, type KubectlResult } from './helpers.ts';

export const CHART = join(__dirname, '../../charts/webgw');
export const HELM = join(binDir(), 'helm');
export const SERVICEMONITOR_CRD = join(binDir(), '..', 'crds', 'monitoring.coreos.com_servicemonitors.yaml');

export function helm(args: string[], input?: string): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(HELM, ['--kubeconfig', plane().kubeconfig, ...args], { maxBuffer: 16 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) || 1 : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

export async function helmOk(args: string[], input?: string): Promise<string> {
  const r = await helm(args, input);
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}
