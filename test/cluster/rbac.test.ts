/** The shipped RBAC is enough, and not more: the reconcilers run under exactly these rules. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../../src/common/log.ts';
import { freeWildcardPort } from '../helpers/ports.ts';
import { Manager } from '../../src/controller/manager.ts';
import { eventually, fakeNode, injectorConfiguration, installCrdsAndNamespace, kubectl, kubectlOk, plane } from './helpers.ts';

const NS = 'webgw-system';
const SA = `system:serviceaccount:${NS}:webgw-controller`;

describe('controller RBAC', () => {
  let manager: Manager;

  beforeAll(async () => {
    await installCrdsAndNamespace(NS);
    await kubectl(['create', 'namespace', 'rbac-tenant']);
    await kubectlOk(['apply', '-f', join(__dirname, '../../deploy/controller/rbac.yaml')]);
    const token = (await kubectlOk(['create', 'token', 'webgw-controller', '-n', NS, '--duration=1h'])).trim();
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'test', server: plane().apiserverUrl, caData: Buffer.from(readFileSync(join(plane().dir, 'ca.crt'))).toString('base64') }],
      users: [{ name: 'controller', token }],
      contexts: [{ name: 'controller', cluster: 'test', user: 'controller' }],
      currentContext: 'controller',
    });
    // The shipped webhook configuration's name; it selects no namespace here, so it changes no pod.
    const webhookPort = await freeWildcardPort();
    await kubectlOk(['apply', '-f', '-'], injectorConfiguration({ name: 'webgw-injector', port: webhookPort, namespaceSelector: { 'rbac-test-never': 'true' }, failurePolicy: 'Ignore' }));
    manager = new Manager({
      kc, namespace: NS, image: 'webgw:test', leaderElection: true, identity: 'rbac-test', logger: createLogger({ test: 'rbac' }, { level: 'error' }),
      webhook: { address: '127.0.0.1', port: webhookPort, hosts: ['127.0.0.1'], configurationName: 'webgw-injector' },
    });
    await manager.start();
  });

  afterAll(async () => {
    await manager.close();
    await kubectl(['delete', 'mutatingwebhookconfiguration', 'webgw-injector']);
  });

  it('keeps its webhook TLS Secret and the caBundle of its own configuration', async () => {
    const bundle = await kubectlOk(['get', 'mutatingwebhookconfiguration', 'webgw-injector', '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}']);
    expect(bundle.trim()).toBe((await kubectlOk(['get', 'secret', 'webgw-webhook-tls', '-n', NS, '-o', 'jsonpath={.data.ca\\.crt}'])).trim());
    expect((await kubectl(['auth', 'can-i', 'patch', 'mutatingwebhookconfigurations/someone-else', '--as', SA])).stdout.trim()).toBe('no');
  });

  it('reconciles a Gateway and an ExposedService with only the shipped permissions', async () => {
    await kubectlOk(['apply', '-f', '-'], fakeNode({ name: 'rbac-farmer', labels: { 'rbac-farmer': 'true' }, externalIp: '127.0.40.1' }) + `---
apiVersion: webgw.io/v1alpha1
kind: Gateway
metadata: {name: rbac-gw}
spec:
  placement: {nodeSelector: {rbac-farmer: "true"}}
  listeners: {http: {port: 80}, tcp: {portRange: {from: 22000, to: 22009}}}
---
apiVersion: webgw.io/v1alpha1
kind: ExposedService
metadata: {name: app, namespace: rbac-tenant}
spec:
  gateways: [{name: rbac-gw}]
  selector: {app: app}
  backend: {port: 8080}
  routes: [{protocol: HTTP, hostnames: [app.rbac.example]}, {protocol: TCP}]
`);
    await eventually(async () => manager.isLeader, 20_000, 'the lease (coordination.k8s.io permissions)');
    await eventually(async () => (await kubectlOk(['get', 'wgw', 'rbac-gw', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).trim() === 'True', 90_000, 'Gateway Ready');
    await eventually(async () => (await kubectlOk(['get', 'xsvc', 'app', '-n', 'rbac-tenant', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).trim() === 'True', 90_000, 'ExposedService Ready');
    expect((await kubectl(['get', 'secret', 'webgw-agent-app', '-n', 'rbac-tenant'])).code).toBe(0);
    const events = await kubectlOk(['get', 'events', '-n', 'default', '--field-selector', 'involvedObject.name=rbac-gw', '-o', 'jsonpath={.items[*].reason}']);
    expect(events).toContain('CreatedCA');
  });

  it.each([
    ['delete', 'nodes', ''],
    ['create', 'pods', 'rbac-tenant'],
    ['delete', 'deployments.apps', 'rbac-tenant'],
    ['create', 'configmaps', 'rbac-tenant'],
    ['delete', 'secrets', 'rbac-tenant'],
    ['update', 'gateways.webgw.io', ''],
    ['create', 'clusterrolebindings.rbac.authorization.k8s.io', ''],
    ['create', 'mutatingwebhookconfigurations.admissionregistration.k8s.io', ''],
  ])('may not %s %s %s', async (verb, resource, ns) => {
    const res = await kubectl(['auth', 'can-i', verb, resource, '--as', SA, ...(ns ? ['-n', ns] : [])]);
    expect(res.stdout.trim()).toBe('no');
  });
});
