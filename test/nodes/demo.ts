/**
 * `npm run cluster:up -- --real-nodes`: the control plane, real nodes (topology.ts), the chart
 * installed from the image built here, and the sample tenant (sample.ts) served through the
 * farmer's gateway. Leaves it all running and prints how to reach it; `npm run cluster:down`
 * removes it.
 */
import { join } from 'node:path';
import { createCA, issueCertificate } from '../../src/pki/issue.ts';
import { binDir, repoRoot, type ControlPlane } from '../cluster/plane.ts';
import { SYSTEM, TENANT, WEB, APP_ON_WORKER, DB, appDeployment, chartValues, tenantObjects } from './sample.ts';
import {
  CLIENT,
  FARMER,
  addressOf,
  fromClient,
  missingForNodes,
  nodesUp,
  runOk,
  waitForClusterDns,
} from './topology.ts';

export async function realNodesDemo(plane: ControlPlane, log: (line: string) => void): Promise<void> {
  log('[demo] building what real nodes need (cached after the first run) ...');
  await runOk('bash', [join(repoRoot(), 'test/nodes/build.sh')], { timeoutMs: 3600_000 });
  const missing = missingForNodes();
  if (missing.length > 0) throw new Error(`real nodes need: ${missing.join(', ')}`);
  await nodesUp(plane, log);
  await waitForClusterDns(plane.kubeconfig);
  const kubectl = (args: string[], input?: string): Promise<string> =>
    runOk('kubectl', ['--kubeconfig', plane.kubeconfig, ...args], { input, timeoutMs: 240_000 });
  await runOk(
    join(binDir(), 'helm'),
    [
      '--kubeconfig',
      plane.kubeconfig,
      'install',
      'webgw',
      join(repoRoot(), 'charts/webgw'),
      '-n',
      SYSTEM,
      '--create-namespace',
      '--values',
      '-',
      '--wait',
      '--timeout',
      '180s',
    ],
    { input: chartValues(), timeoutMs: 240_000 },
  );
  log('[demo] operator installed (helm release webgw in webgw-system), Gateway edge on the farmer node');
  const day = { notAfter: new Date(Date.now() + 24 * 3600_000) };
  const cert = issueCertificate(
    createCA('webgw demo app CA', day),
    { commonName: DB, usage: 'server', hosts: [DB] },
    day,
  );
  await kubectl(['apply', '-f', '-'], tenantObjects(cert));
  await kubectl(['wait', '--for=condition=Accepted', `xsvc/shop`, '-n', TENANT, '--timeout=120s']);
  await kubectl(['apply', '-f', '-'], appDeployment(TENANT, 2, APP_ON_WORKER));
  await kubectl(['rollout', 'status', 'deployment/app', '-n', TENANT, '--timeout=180s']);
  const url = `http://${addressOf(FARMER)}/`;
  for (let i = 0; ; i++) {
    const r = await fromClient('curl', ['-sS', '-m', '3', '-H', `Host: ${WEB}`, url]);
    if (r.code === 0 && r.stdout.startsWith('hello')) break;
    if (i === 60) throw new Error(`the sample app does not answer through the gateway: ${r.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  log(
    [
      '',
      'Real nodes up: farmer (the gateway), worker (the app, refusing every inbound connection), client (the Internet).',
      `  export KUBECONFIG=${plane.kubeconfig}`,
      '  kubectl get nodes,pods -A -o wide',
      `  ip netns exec ${CLIENT.name} curl -H 'Host: ${WEB}' ${url}`,
      `  kubectl get xsvc shop -n ${TENANT}   # the TCP port and the TLS name ${DB}`,
      `Stop it with: npm run cluster:down   (the controller's logs: kubectl logs -n ${SYSTEM} deploy/webgw-controller)`,
    ].join('\n'),
  );
}
