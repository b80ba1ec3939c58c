/** Sidecar injection through the real API server, served by the controller with its own TLS and caBundle. */
import { createLogger } from '../../src/common/log.ts';
import { Manager } from '../../src/controller/manager.ts';
import { loadKubeConfig } from '../../src/controller/runtime/kube.ts';
import { freeWildcardPort } from '../helpers/ports.ts';
import {
  WEBHOOK_WORKER,
  eventually,
  injectorConfiguration,
  installCrdsAndNamespace,
  kubectl,
  kubectlOk,
  plane,
} from './helpers.ts';

const log = createLogger({ test: 'webhook' }, { level: 'error' });

describe('agent injection webhook', () => {
  let manager: Manager;

  beforeAll(async () => {
    await installCrdsAndNamespace();
    for (const ns of ['inject-on', 'inject-off']) await kubectl(['create', 'namespace', ns]);
    await kubectlOk(['label', 'namespace', 'inject-on', 'webgw.io/injection=enabled', '--overwrite']);
    // The configuration as an installer ships it: no caBundle; the controller writes it.
    const port = await freeWildcardPort();
    await kubectlOk(
      ['apply', '-f', '-'],
      injectorConfiguration({
        name: 'webgw-test-injector',
        port,
        namespaceSelector: { 'webgw.io/injection': 'enabled' },
      }),
    );
    manager = new Manager({
      kc: loadKubeConfig(plane().kubeconfig),
      namespace: 'webgw-system',
      image: 'webgw:test',
      leaderElection: false,
      logger: log,
      webhook: {
        address: '127.0.0.1',
        port,
        hosts: ['127.0.0.1'],
        configurationName: 'webgw-test-injector',
        workerFile: WEBHOOK_WORKER,
      },
    });
    await manager.start();
    const bundle = await kubectlOk([
      'get',
      'mutatingwebhookconfiguration',
      'webgw-test-injector',
      '-o',
      'jsonpath={.webhooks[0].clientConfig.caBundle}',
    ]);
    const tls = await kubectlOk([
      'get',
      'secret',
      'webgw-webhook-tls',
      '-n',
      'webgw-system',
      '-o',
      'jsonpath={.data.ca\\.crt}',
    ]);
    expect(bundle.trim()).toBe(tls.trim());
    for (const ns of ['inject-on', 'inject-off']) {
      await kubectlOk(
        ['apply', '-f', '-'],
        `apiVersion: webgw.io/v1alpha1\nkind: ExposedService\nmetadata: {name: shop, namespace: ${ns}}\nspec:\n  gateways: [{name: none}]\n  selector: {app: shop}\n  backend: {port: 8080}\n  routes: [{protocol: TCP}]\n`,
      );
    }
    await eventually(
      async () => manager.exposedServicesIn('inject-on').length === 1,
      30_000,
      'the service in the cache',
    );
  });

  afterAll(async () => {
    await kubectl(['delete', 'mutatingwebhookconfiguration', 'webgw-test-injector']);
    await manager.close();
  });

  const podYaml = (ns: string, name: string, app: string): string =>
    `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: ${ns}, labels: {app: ${app}}}\nspec:\n  containers: [{name: app, image: registry.invalid/app:1}]\n`;
  const initNames = async (ns: string, name: string): Promise<string> =>
    (await kubectlOk(['get', 'pod', name, '-n', ns, '-o', 'jsonpath={.spec.initContainers[*].name}'])).trim();

  it('injects the agent as a native sidecar into selected pods of enabled namespaces', async () => {
    await eventually(
      async () => (await kubectl(['apply', '-f', '-'], podYaml('inject-on', 'shop-1', 'shop'))).code === 0,
      30_000,
      'pod creation',
    );
    expect(await initNames('inject-on', 'shop-1')).toBe('webgw-agent');
    const sidecar = JSON.parse(
      await kubectlOk(['get', 'pod', 'shop-1', '-n', 'inject-on', '-o', 'jsonpath={.spec.initContainers[0]}']),
    ) as {
      restartPolicy: string;
      securityContext: Record<string, unknown>;
      volumeMounts: Array<{ readOnly: boolean }>;
    };
    expect(sidecar.restartPolicy).toBe('Always');
    expect(sidecar.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
    });
    expect(sidecar.volumeMounts[0]!.readOnly).toBe(true);
    // The agent holds no Kubernetes credentials even though the pod's service account has some.
    expect(JSON.stringify(sidecar.volumeMounts)).not.toMatch(/kube-api-access/);
  });

  it('leaves other pods and other namespaces alone', async () => {
    await kubectlOk(['apply', '-f', '-'], podYaml('inject-on', 'other-1', 'other'));
    await kubectlOk(['apply', '-f', '-'], podYaml('inject-off', 'shop-1', 'shop'));
    expect(await initNames('inject-on', 'other-1')).toBe('');
    expect(await initNames('inject-off', 'shop-1')).toBe('');
  });

  it('reports selected pods that run without the agent', async () => {
    const message = await eventually(
      async () => {
        await kubectlOk(['annotate', 'xsvc', 'shop', '-n', 'inject-off', `poke=${Date.now()}`, '--overwrite']); // a reconcile now
        const m = (
          await kubectlOk([
            'get',
            'xsvc',
            'shop',
            '-n',
            'inject-off',
            '-o',
            'jsonpath={.status.conditions[?(@.type=="AgentInjected")].message}',
          ])
        ).trim();
        return /shop-1/.test(m) ? m : undefined;
      },
      60_000,
      'AgentInjected=False naming shop-1',
    );
    expect(message).toMatch(/1 selected pod\(s\) run without the agent/);
    const injected = (
      await kubectlOk([
        'get',
        'xsvc',
        'shop',
        '-n',
        'inject-on',
        '-o',
        'jsonpath={.status.conditions[?(@.type=="AgentInjected")].status}',
      ])
    ).trim();
    expect(injected).toBe('True');
  });
});
