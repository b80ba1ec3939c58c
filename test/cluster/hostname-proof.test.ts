/**
 * Proof of control of a hostname, end to end on the real control plane with a real DNS server
 * (issue 12): on a Gateway with the default hostnamePolicy, an older claimant without the TXT
 * record gets nothing, the namespace that published it gets the name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createLogger } from '../../src/common/log.ts';
import { Manager } from '../../src/controller/manager.ts';
import { loadKubeConfig } from '../../src/controller/runtime/kube.ts';
import { challengeRecord, verificationValue } from '../../src/controller/trust/verification.ts';
import { freeWildcardPort } from '../helpers/ports.ts';
import { eventually, fakeNode, installCrdsAndNamespace, kubectl, kubectlOk, plane } from './helpers.ts';

const NS = 'webgw-system';
const xsvc = (ns: string, name: string): string => `apiVersion: webgw.io/v1alpha1
kind: ExposedService
metadata: {name: ${name}, namespace: ${ns}}
spec:
  gateways: [{name: proof-gw}]
  selector: {app: ${name}}
  backend: {port: 8080}
  routes: [{protocol: HTTP, hostnames: [proof.example]}]
`;
const condition = async (ns: string, name: string, type: string): Promise<{ status?: string; message?: string }> => {
  const x = JSON.parse(await kubectlOk(['get', 'xsvc', name, '-n', ns, '-o', 'json'])) as {
    status?: { conditions?: Array<{ type: string; status: string; message: string }> };
  };
  return x.status?.conditions?.find((c) => c.type === type) ?? {};
};

describe('hostname proof of control (hostnamePolicy.external: Verified, the default)', () => {
  let manager: Manager;
  let dns: ChildProcess;

  beforeAll(async () => {
    await installCrdsAndNamespace(NS);
    for (const ns of ['proof-squatter', 'proof-owner']) await kubectl(['create', 'namespace', ns]);
    const ownerUid = await kubectlOk(['get', 'namespace', 'proof-owner', '-o', 'jsonpath={.metadata.uid}']);
    const dnsPort = await freeWildcardPort();
    dns = spawn(
      'dnsmasq',
      [
        '--keep-in-foreground',
        '--no-resolv',
        '--no-hosts',
        '--conf-file=/dev/null',
        '--bind-interfaces',
        '--listen-address=127.0.0.1',
        `--port=${dnsPort}`,
        '--user=root',
        `--txt-record=${challengeRecord('proof.example')},${verificationValue(ownerUid)}`,
      ],
      { stdio: 'ignore' },
    );
    await kubectlOk(
      ['apply', '-f', '-'],
      fakeNode({ name: 'proof-farmer', labels: { 'proof-farmer': 'true' }, externalIp: '127.0.50.1' }) +
        `---
apiVersion: webgw.io/v1alpha1
kind: Gateway
metadata: {name: proof-gw}
spec:
  domain: proof.gw.example.net
  placement: {nodeSelector: {proof-farmer: "true"}}
  listeners: {http: {port: 80}}
`,
    );
    manager = new Manager({
      kc: loadKubeConfig(plane().kubeconfig),
      namespace: NS,
      image: 'webgw:test',
      leaderElection: false,
      dnsServer: `127.0.0.1:${dnsPort}`,
      logger: createLogger({ test: 'hostname-proof' }, { level: 'error' }),
    });
    await manager.start();
  });

  afterAll(async () => {
    await manager.close();
    dns.kill();
    await kubectl(['delete', 'namespace', 'proof-squatter', 'proof-owner', '--wait=false']);
    await kubectl(['delete', 'gateway', 'proof-gw']);
  });

  it('the first claimant without proof gets nothing; the namespace that published the record gets the name', async () => {
    await kubectlOk(['apply', '-f', '-'], xsvc('proof-squatter', 'squat'));
    await eventually(
      async () =>
        /not proven yet: publish the TXT record _webgw-challenge\.proof\.example with the value "webgw-verification=[0-9a-f]{32}"/.test(
          (await condition('proof-squatter', 'squat', 'HostnameConflict')).message ?? '',
        ),
      60_000,
      'the squatter to be told what to publish',
    );
    await kubectlOk(['apply', '-f', '-'], xsvc('proof-owner', 'shop'));
    await eventually(
      async () =>
        (
          await kubectlOk(['get', 'xsvc', 'shop', '-n', 'proof-owner', '-o', 'jsonpath={.status.endpoints[0].urls}'])
        ).includes('http://proof.example'),
      60_000,
      'the owner to hold the name',
    );
    expect((await condition('proof-owner', 'shop', 'HostnameConflict')).status).toBe('False');
    expect(
      await kubectlOk(['get', 'xsvc', 'squat', '-n', 'proof-squatter', '-o', 'jsonpath={.status.endpoints[0].urls}']),
    ).not.toContain('proof.example');
  });
});
