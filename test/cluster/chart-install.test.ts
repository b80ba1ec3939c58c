/**
 * `helm install` into the test control plane creates everything; the controller then runs as
 * a local process under the chart's ServiceAccount (so the shipped RBAC is enough, and not
 * more), upgrades an outdated CRD, reconciles a Gateway from the values and an ExposedService;
 * `helm upgrade` with changed values keeps the webhook's caBundle; `helm uninstall` leaves
 * nothing stuck (the namespace deletes cleanly; the CRDs stay, as documented).
 */
import { createLogger } from '../../src/common/log.ts';
import { Manager } from '../../src/controller/manager.ts';
import { APPLIED_HASH } from '../../src/controller/runtime/apply.ts';
import { CHART, helmOk } from './chart-helpers.ts';
import { waitForCondition } from './controller-under-test.ts';
import { WEBHOOK_WORKER, eventually, fakeNode, freeWildcardPort, kubeConfigAs, kubectl, kubectlOk } from './helpers.ts';

const NS = 'webgw-chart';
const TENANT = 'chart-tenant';
const SA = `system:serviceaccount:${NS}:webgw-controller`;
const gateway = (name: string, tcpFrom: number) => ({
  name,
  spec: {
    placement: { nodeSelector: { 'chart-farmer': 'true' } },
    listeners: { http: { port: 80 }, tcp: { portRange: { from: tcpFrom, to: tcpFrom + 9 } } },
    hostnamePolicy: { external: 'Allowed' },
  },
});
const installValues = { gateways: [gateway('chart-gw', 22100)] };
const upgradeValues = {
  controller: { replicas: 3 },
  webhook: { failurePolicy: 'Fail' },
  gateways: [gateway('chart-gw', 22100), gateway('chart-gw2', 22200)],
};

async function jsonpath(args: string[], path: string): Promise<string> {
  return (await kubectlOk([...args, '-o', `jsonpath=${path}`])).trim();
}

describe("helm install, the controller under the chart's ServiceAccount, upgrade, uninstall", () => {
  let manager: Manager | undefined;

  beforeAll(async () => {
    await kubectlOk(
      ['apply', '-f', '-'],
      fakeNode({ name: 'chart-farmer', labels: { 'chart-farmer': 'true' }, externalIp: '127.0.40.1' }),
    );
    await helmOk(
      ['install', 'webgw', CHART, '--namespace', NS, '--create-namespace', '-f', '-'],
      JSON.stringify(installValues),
    );
  });

  afterAll(async () => {
    await manager?.close();
    // Gone before the next test file starts: its controllers would otherwise still see (and
    // write for) this tenant's ExposedService while the namespace terminates.
    await kubectl(['delete', 'namespace', TENANT, '--wait=true', '--timeout=90s']);
  });

  it('creates everything the chart ships', async () => {
    for (const [kind, name, ns] of [
      ['deployment', 'webgw-controller', NS],
      ['serviceaccount', 'webgw-controller', NS],
      ['role', 'webgw-controller', NS],
      ['rolebinding', 'webgw-controller', NS],
      ['service', 'webgw-webhook', NS],
      ['service', 'webgw-controller-metrics', NS],
      ['poddisruptionbudget', 'webgw-controller', NS],
      ['clusterrole', 'webgw-controller', ''],
      ['clusterrolebinding', 'webgw-controller', ''],
      ['mutatingwebhookconfiguration', 'webgw-injector', ''],
      ['crd', 'gateways.webgw.io', ''],
      ['crd', 'exposedservices.webgw.io', ''],
      ['gateway', 'chart-gw', ''],
    ] as const) {
      expect(`${kind}/${name}: ${(await kubectl(['get', kind, name, ...(ns ? ['-n', ns] : [])])).code}`).toBe(
        `${kind}/${name}: 0`,
      );
    }
    expect(
      await jsonpath(['get', 'deploy', 'webgw-controller', '-n', NS], '{.spec.template.spec.containers[0].args}'),
    ).toContain('--manage-crds');
  });

  it("runs the controller under the chart's ServiceAccount: it upgrades an outdated CRD and reconciles", async () => {
    // An older controller's CRD, as far as the schema hash says. (Only the annotation changes:
    // a changed spec makes the API server re-initialize the storage of that resource, which in
    // a busy run also stalled garbage collection for minutes.)
    const current = await jsonpath(
      ['get', 'crd', 'exposedservices.webgw.io'],
      `{.metadata.annotations.webgw\\.io/applied-hash}`,
    );
    await kubectlOk(['annotate', '--overwrite', 'crd', 'exposedservices.webgw.io', `${APPLIED_HASH}=older-schema`]);
    const webhookPort = await freeWildcardPort();
    manager = new Manager({
      kc: await kubeConfigAs('webgw-controller', NS),
      namespace: NS,
      image: 'webgw:chart',
      leaderElection: true,
      manageCrds: true,
      identity: 'chart-test',
      logger: createLogger({ test: 'chart-install' }, { level: 'error' }),
      webhook: {
        address: '127.0.0.1',
        port: webhookPort,
        hosts: ['127.0.0.1'],
        configurationName: 'webgw-injector',
        workerFile: WEBHOOK_WORKER,
      },
    });
    await manager.start();
    await eventually(async () => manager!.isLeader, 20_000, 'the lease (coordination.k8s.io permissions)');
    await eventually(
      async () =>
        (await jsonpath(
          ['get', 'crd', 'exposedservices.webgw.io'],
          `{.metadata.annotations.webgw\\.io/applied-hash}`,
        )) === current,
      30_000,
      'the CRD upgraded back',
    );
    expect(
      await kubectl(['auth', 'can-i', 'patch', 'customresourcedefinitions/exposedservices.webgw.io', '--as', SA]),
    ).toMatchObject({ stdout: 'yes\n' });

    const bundle = await jsonpath(
      ['get', 'mutatingwebhookconfiguration', 'webgw-injector'],
      '{.webhooks[0].clientConfig.caBundle}',
    );
    expect(bundle).toBe(await jsonpath(['get', 'secret', 'webgw-webhook-tls', '-n', NS], '{.data.ca\\.crt}'));

    await kubectl(['create', 'namespace', TENANT]);
    await kubectlOk(
      ['apply', '-f', '-'],
      `apiVersion: webgw.io/v1alpha1
kind: ExposedService
metadata: {name: app, namespace: ${TENANT}}
spec:
  gateways: [{name: chart-gw}]
  selector: {app: app}
  backend: {port: 8080}
  routes: [{protocol: HTTP, hostnames: [app.chart.example]}, {protocol: TCP}]
`,
    );
    await waitForCondition('gateway', 'chart-gw', undefined, 'Ready');
    await waitForCondition('xsvc', 'app', TENANT, 'Programmed');
    expect((await kubectl(['get', 'secret', 'webgw-agent-app', '-n', TENANT])).code).toBe(0);
    expect(
      await jsonpath(
        ['get', 'events', '-n', 'default', '--field-selector', 'involvedObject.name=chart-gw'],
        '{.items[*].reason}',
      ),
    ).toContain('CreatedCA');
  });

  it.each([
    ['delete', 'nodes', ''],
    ['create', 'pods', TENANT],
    ['delete', 'deployments.apps', TENANT],
    ['create', 'configmaps', TENANT],
    ['delete', 'secrets', TENANT],
    ['update', 'gateways.webgw.io', ''],
    ['create', 'clusterrolebindings.rbac.authorization.k8s.io', ''],
    ['create', 'mutatingwebhookconfigurations.admissionregistration.k8s.io', ''],
    ['patch', 'mutatingwebhookconfigurations/someone-else', ''],
    ['create', 'customresourcedefinitions.apiextensions.k8s.io', ''],
    ['patch', 'customresourcedefinitions/widgets.example.com', ''],
    ['delete', 'customresourcedefinitions/gateways.webgw.io', ''],
  ])("the chart's ServiceAccount may not %s %s %s", async (verb, resource, ns) => {
    const res = await kubectl(['auth', 'can-i', verb, resource, '--as', SA, ...(ns ? ['-n', ns] : [])]);
    expect(res.stdout.trim()).toBe('no');
  });

  it('helm upgrade with changed values applies them and keeps the caBundle the controller wrote', async () => {
    const bundle = await jsonpath(
      ['get', 'mutatingwebhookconfiguration', 'webgw-injector'],
      '{.webhooks[0].clientConfig.caBundle}',
    );
    await helmOk(['upgrade', 'webgw', CHART, '--namespace', NS, '-f', '-'], JSON.stringify(upgradeValues));
    expect(await jsonpath(['get', 'deploy', 'webgw-controller', '-n', NS], '{.spec.replicas}')).toBe('3');
    expect(
      await jsonpath(['get', 'mutatingwebhookconfiguration', 'webgw-injector'], '{.webhooks[0].failurePolicy}'),
    ).toBe('Fail');
    expect(
      await jsonpath(['get', 'mutatingwebhookconfiguration', 'webgw-injector'], '{.webhooks[0].clientConfig.caBundle}'),
    ).toBe(bundle);
    await waitForCondition('gateway', 'chart-gw2', undefined, 'Ready');
  });

  it('helm uninstall leaves nothing stuck', async () => {
    await manager!.close();
    manager = undefined;
    await helmOk(['uninstall', 'webgw', '--namespace', NS, '--wait', '--timeout', '60s']);
    for (const [kind, name] of [
      ['clusterrole', 'webgw-controller'],
      ['clusterrolebinding', 'webgw-controller'],
      ['mutatingwebhookconfiguration', 'webgw-injector'],
      ['gateway', 'chart-gw'],
      ['gateway', 'chart-gw2'],
    ]) {
      await eventually(async () => (await kubectl(['get', kind!, name!])).code !== 0, 30_000, `${kind}/${name} to go`);
    }
    // The Gateways' proxy workloads go with them (owner references, garbage collection).
    await eventually(
      async () =>
        (await jsonpath(
          ['get', 'daemonsets,deployments', '-n', NS, '-l', 'webgw.io/gateway in (chart-gw,chart-gw2)'],
          '{.items[*].metadata.name}',
        )) === '',
      120_000,
      'the proxy workloads to go',
    );
    expect((await kubectl(['get', 'crd', 'gateways.webgw.io'])).code).toBe(0);
    const started = Date.now();
    await kubectlOk(['delete', 'namespace', NS, '--wait=true', '--timeout=60s']);
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 300_000);
});
