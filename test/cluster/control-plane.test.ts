/**
 * The test control plane itself: real schema validation, scheduling, garbage collection,
 * admission webhooks and API server restarts, which the operator's tests rely on.
 */
import { eventually, fakeNode, kubectl, kubectlOk, plane, serveWebhook } from './helpers.ts';

const widgetCrd = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.test.webgw.io}
spec:
  group: test.webgw.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer, minimum: 1, maximum: 10}
`;

// A label and taint of this test's own: other test files add farmer nodes to the same cluster.
const farmerLabel = 'plane-test.webgw.io/farmer';
const node = (name: string, farmer: boolean): string =>
  fakeNode({
    name,
    ...(farmer
      ? { labels: { [farmerLabel]: 'true' }, taints: [{ key: farmerLabel, value: 'true', effect: 'NoSchedule' }] }
      : {}),
  });

describe('test control plane', () => {
  it('serves the expected Kubernetes version', async () => {
    const version = JSON.parse(await kubectlOk(['version', '-o', 'json'])) as { serverVersion: { gitVersion: string } };
    expect(version.serverVersion.gitVersion).toMatch(/^v1\.34\.\d+$/);
  });

  it('establishes a CRD and rejects objects that violate its schema', async () => {
    await kubectlOk(['apply', '-f', '-'], widgetCrd);
    await kubectlOk(['wait', '--for=condition=Established', 'crd/widgets.test.webgw.io', '--timeout=60s']);
    await eventually(
      async () =>
        (
          await kubectl(
            ['apply', '-f', '-'],
            'apiVersion: test.webgw.io/v1\nkind: Widget\nmetadata: {name: ok, namespace: default}\nspec: {size: 3}\n',
          )
        ).code === 0,
      30_000,
      'a valid Widget',
    );
    const bad = await kubectl(
      ['apply', '-f', '-'],
      'apiVersion: test.webgw.io/v1\nkind: Widget\nmetadata: {name: big, namespace: default}\nspec: {size: 20}\n',
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/spec\.size: Invalid value: 20: spec\.size in body should be less than or equal to 10/);
  });

  it('schedules onto the farmer node only, and kwok runs the pods', async () => {
    await kubectlOk(['apply', '-f', '-'], node('farmer-1', true) + '---' + node('compute-1', false));
    await kubectlOk(['wait', '--for=condition=Ready', 'node/farmer-1', 'node/compute-1', '--timeout=60s']);
    await kubectlOk(
      ['apply', '-f', '-'],
      `
apiVersion: apps/v1
kind: Deployment
metadata: {name: edge, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: edge}}
  template:
    metadata: {labels: {app: edge}}
    spec:
      nodeSelector: {plane-test.webgw.io/farmer: "true"}
      tolerations: [{key: plane-test.webgw.io/farmer, operator: Equal, value: "true", effect: NoSchedule}]
      containers: [{name: edge, image: registry.invalid/edge:1}]
`,
    );
    const pods = await eventually(
      async () => {
        const list = JSON.parse(await kubectlOk(['get', 'pods', '-n', 'default', '-l', 'app=edge', '-o', 'json'])) as {
          items: Array<{ spec: { nodeName?: string }; status: { phase?: string } }>;
        };
        return list.items.length === 2 && list.items.every((p) => p.status.phase === 'Running')
          ? list.items
          : undefined;
      },
      90_000,
      'two Running pods',
    );
    expect(pods.map((p) => p.spec.nodeName)).toEqual(['farmer-1', 'farmer-1']);
  });

  it('garbage-collects what an owner owned', async () => {
    await kubectlOk(['create', 'configmap', 'owner', '-n', 'default']);
    const uid = (
      await kubectlOk(['get', 'configmap', 'owner', '-n', 'default', '-o', 'jsonpath={.metadata.uid}'])
    ).trim();
    await kubectlOk(
      ['apply', '-f', '-'],
      `
apiVersion: v1
kind: Secret
metadata:
  name: owned
  namespace: default
  ownerReferences: [{apiVersion: v1, kind: ConfigMap, name: owner, uid: ${uid}}]
stringData: {a: b}
`,
    );
    await kubectlOk(['delete', 'configmap', 'owner', '-n', 'default']);
    await eventually(
      async () => (await kubectl(['get', 'secret', 'owned', '-n', 'default'])).code !== 0,
      60_000,
      'the owned Secret to go',
    );
  });

  it('calls a mutating webhook served by the test process', async () => {
    const webhook = await serveWebhook((review) => ({
      allowed: true,
      patch: [{ op: 'add', path: '/metadata/labels/webgw.io~1mutated', value: 'yes' }],
      ...(review.request.operation === 'CREATE' ? {} : {}),
    }));
    try {
      await kubectlOk(['create', 'namespace', 'hooked']);
      await kubectlOk(
        ['apply', '-f', '-'],
        `
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: test-mutator}
webhooks:
  - name: mutator.test.webgw.io
    clientConfig: {url: "${webhook.url}/mutate", caBundle: ${webhook.caBundle}}
    rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}]
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: hooked}}
    sideEffects: None
    admissionReviewVersions: [v1]
    failurePolicy: Fail
    timeoutSeconds: 5
`,
      );
      const manifest =
        'apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: hooked, labels: {app: p}}\nspec: {containers: [{name: c, image: registry.invalid/c:1}]}\n';
      await eventually(
        async () => (await kubectl(['apply', '-f', '-'], manifest)).code === 0,
        30_000,
        'pod creation through the webhook',
      );
      const labels = JSON.parse(
        await kubectlOk(['get', 'pod', 'p', '-n', 'hooked', '-o', 'jsonpath={.metadata.labels}']),
      ) as Record<string, string>;
      expect(labels['webgw.io/mutated']).toBe('yes');
    } finally {
      await kubectl(['delete', 'mutatingwebhookconfiguration', 'test-mutator']);
      await webhook.close();
    }
  });

  it('stops and starts the API server on the same port and etcd data', async () => {
    await kubectlOk(['create', 'configmap', 'survivor', '-n', 'default', '--from-literal=k=v']);
    const p = plane();
    const url = p.apiserverUrl;
    await p.stopApiserver();
    expect((await kubectl(['get', 'configmap', 'survivor', '-n', 'default', '--request-timeout=2s'])).code).not.toBe(0);
    await p.startApiserver();
    expect(p.apiserverUrl).toBe(url);
    expect(
      (await kubectlOk(['get', 'configmap', 'survivor', '-n', 'default', '-o', 'jsonpath={.data.k}'])).trim(),
    ).toBe('v');
  });
});
