/** Sidecar injection through the real API server, served by the controller's webhook code. */
import { join } from 'node:path';
import { createLogger } from '../../src/common/log.ts';
import { Manager } from '../../src/controller/manager.ts';
import { loadKubeConfig } from '../../src/controller/runtime/kube.ts';
import { INJECT_PATH, WebhookServer } from '../../src/controller/webhook/server.ts';
import { createCA, issueCertificate } from '../../src/pki/issue.ts';
import { eventually, kubectl, kubectlOk, plane } from './helpers.ts';

const log = createLogger({ test: 'webhook' }, { level: 'error' });

describe('agent injection webhook', () => {
  let manager: Manager;
  let webhook: WebhookServer;

  beforeAll(async () => {
    await kubectlOk(['apply', '--server-side', '--field-manager=webgw-test', '-f', join(__dirname, '../../deploy/crds')]);
    await kubectlOk(['wait', '--for=condition=Established', 'crd/exposedservices.webgw.io', '--timeout=60s']);
    await kubectl(['create', 'namespace', 'webgw-system']);
    for (const ns of ['inject-on', 'inject-off']) await kubectl(['create', 'namespace', ns]);
    await kubectlOk(['label', 'namespace', 'inject-on', 'webgw.io/injection=enabled', '--overwrite']);
    manager = new Manager({ kc: loadKubeConfig(plane().kubeconfig), namespace: 'webgw-system', image: 'webgw:test', leaderElection: false, logger: log });
    await manager.start();
    const validity = { notAfter: new Date(Date.now() + 3600_000) };
    const ca = createCA('webhook test CA', validity);
    const serving = issueCertificate(ca, { commonName: '127.0.0.1', usage: 'server', hosts: ['127.0.0.1'] }, validity);
    webhook = new WebhookServer({ address: '127.0.0.1', port: 0, certPem: serving.certPem, keyPem: serving.keyPem, image: 'webgw:test', servicesIn: (ns) => manager.exposedServicesIn(ns), logger: log });
    const { port } = await webhook.start();
    await kubectlOk(['apply', '-f', '-'], `
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: webgw-test-injector}
webhooks:
  - name: inject.webgw.io
    clientConfig: {url: "https://127.0.0.1:${port}${INJECT_PATH}", caBundle: ${Buffer.from(ca.certPem).toString('base64')}}
    rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}]
    namespaceSelector: {matchLabels: {webgw.io/injection: enabled}}
    sideEffects: None
    admissionReviewVersions: [v1]
    failurePolicy: Fail
    reinvocationPolicy: IfNeeded
    timeoutSeconds: 5
`);
    for (const ns of ['inject-on', 'inject-off']) {
      await kubectlOk(['apply', '-f', '-'], `apiVersion: webgw.io/v1alpha1\nkind: ExposedService\nmetadata: {name: shop, namespace: ${ns}}\nspec:\n  gateways: [{name: none}]\n  selector: {app: shop}\n  backend: {port: 8080}\n  routes: [{protocol: TCP}]\n`);
    }
    await eventually(async () => manager.exposedServicesIn('inject-on').length === 1, 30_000, 'the service in the cache');
  });

  afterAll(async () => {
    await kubectl(['delete', 'mutatingwebhookconfiguration', 'webgw-test-injector']);
    await webhook.close();
    await manager.close();
  });

  const podYaml = (ns: string, name: string, app: string): string => `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: ${ns}, labels: {app: ${app}}}\nspec:\n  containers: [{name: app, image: registry.invalid/app:1}]\n`;
  const initNames = async (ns: string, name: string): Promise<string> => (await kubectlOk(['get', 'pod', name, '-n', ns, '-o', 'jsonpath={.spec.initContainers[*].name}'])).trim();

  it('injects the agent as a native sidecar into selected pods of enabled namespaces', async () => {
    await eventually(async () => (await kubectl(['apply', '-f', '-'], podYaml('inject-on', 'shop-1', 'shop'))).code === 0, 30_000, 'pod creation');
    expect(await initNames('inject-on', 'shop-1')).toBe('webgw-agent');
    const sidecar = JSON.parse(await kubectlOk(['get', 'pod', 'shop-1', '-n', 'inject-on', '-o', 'jsonpath={.spec.initContainers[0]}'])) as { restartPolicy: string; securityContext: Record<string, unknown>; volumeMounts: Array<{ readOnly: boolean }> };
    expect(sidecar.restartPolicy).toBe('Always');
    expect(sidecar.securityContext).toMatchObject({ readOnlyRootFilesystem: true, runAsNonRoot: true, allowPrivilegeEscalation: false });
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
});
