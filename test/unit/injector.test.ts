import { AGENT_CONTAINER, injectAgent, injectionPatch, type PodLike } from '../../src/controller/webhook/injector.ts';
import type { ExposedService } from '../../src/crds/types.ts';

function svc(
  name: string,
  selector: Record<string, string>,
  mode: 'Sidecar' | 'Connector' = 'Sidecar',
  created = '2026-01-01T00:00:00Z',
): ExposedService {
  return {
    apiVersion: 'webgw.io/v1alpha1',
    kind: 'ExposedService',
    metadata: { name, namespace: 'shop', creationTimestamp: created },
    spec: {
      gateways: [{ name: 'eu' }],
      mode,
      selector,
      backend: { port: 8080, ...(mode === 'Connector' ? { service: 's' } : {}) },
      routes: [{ protocol: 'TCP' }],
      proxyProtocol: 'None',
    },
  };
}

const pod = (labels: Record<string, string>, extra: Partial<NonNullable<PodLike['spec']>> = {}): PodLike => ({
  metadata: { name: 'p', namespace: 'shop', labels },
  spec: { containers: [{ name: 'app', image: 'app:1' }], ...extra },
});

/** Applies the few JSON patch forms the injector emits. */
function applyPatch(doc: PodLike, ops: Array<Record<string, unknown>>): PodLike {
  const copy = structuredClone(doc) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  for (const op of ops) {
    const parts = String(op.path)
      .split('/')
      .slice(1)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = parts.pop()!;
    const parent = parts.reduce((o, p) => o[p], copy);
    parent[last] = op.value;
  }
  return copy as PodLike;
}

describe('sidecar injector', () => {
  it.each([
    ['a pod no Sidecar service selects', pod({ app: 'other' }), [svc('shop', { app: 'shop' })], false],
    ['a pod a Connector service selects', pod({ app: 'shop' }), [svc('shop', { app: 'shop' }, 'Connector')], false],
    ['a selected pod', pod({ app: 'shop', tier: 'web' }), [svc('shop', { app: 'shop' })], true],
    [
      'a pod that already has the agent',
      pod({ app: 'shop' }, { initContainers: [{ name: AGENT_CONTAINER }] }),
      [svc('shop', { app: 'shop' })],
      false,
    ],
  ])('%s → injected: %s', (_name, p, services, injected) => {
    expect(injectAgent(p, services, 'webgw:1') !== undefined).toBe(injected);
  });

  it('adds a native sidecar first, locked down, with the credential Secret read-only', () => {
    const out = injectAgent(
      pod({ app: 'shop' }, { initContainers: [{ name: 'migrate' }], volumes: [{ name: 'data', emptyDir: {} }] }),
      [svc('shop', { app: 'shop' })],
      'webgw:1',
    )!;
    const sidecar = out.spec!.initContainers![0]!;
    expect(sidecar).toMatchObject({
      name: 'webgw-agent',
      image: 'webgw:1',
      restartPolicy: 'Always',
      args: ['agent', '--config', '/etc/webgw-agent/agent.yaml'],
    });
    expect(sidecar.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(sidecar.volumeMounts).toEqual([
      { name: 'webgw-agent-credentials', mountPath: '/etc/webgw-agent', readOnly: true },
      // Shadows the API token the ServiceAccount plugin would mount: the agent needs none.
      { name: 'webgw-agent-no-api-token', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
    ]);
    // The kubelet probes from the node: the probe must target the pod's IP, not 127.0.0.1.
    expect(sidecar.readinessProbe).toMatchObject({ httpGet: { port: 9903, path: '/readyz' } });
    expect((sidecar.readinessProbe as { httpGet: { host?: string } }).httpGet.host).toBeUndefined();
    expect(out.spec!.initContainers!.map((c) => c.name)).toEqual(['webgw-agent', 'migrate']);
    expect(out.spec!.volumes).toEqual([
      { name: 'data', emptyDir: {} },
      // Readable by the agent's uid whatever the tenant pod's fsGroup (real kubelets write it root:root).
      { name: 'webgw-agent-credentials', secret: { secretName: 'webgw-agent-shop', defaultMode: 0o444 } },
      // Room for the directory itself: a real kubelet evicts the pod past sizeLimit.
      { name: 'webgw-agent-no-api-token', emptyDir: { sizeLimit: '1Mi' } },
    ]);
    expect(out.metadata!.annotations).toEqual({ 'webgw.io/injected-for': 'shop' });
  });

  it('picks the oldest of several selecting services', () => {
    const out = injectAgent(
      pod({ app: 'shop' }),
      [
        svc('newer', { app: 'shop' }, 'Sidecar', '2026-02-01T00:00:00Z'),
        svc('older', { app: 'shop' }, 'Sidecar', '2026-01-01T00:00:00Z'),
      ],
      'webgw:1',
    )!;
    expect(out.metadata!.annotations!['webgw.io/injected-for']).toBe('older');
  });

  it.each([
    ['without annotations, init containers or volumes', pod({ app: 'shop' })],
    [
      'with all of them',
      {
        ...pod({ app: 'shop' }, { initContainers: [{ name: 'migrate' }], volumes: [{ name: 'v' }] }),
        metadata: { name: 'p', labels: { app: 'shop' }, annotations: { keep: 'me' } },
      },
    ],
  ])('the JSON patch reproduces the injected pod %s, and is idempotent', (_name, p) => {
    const services = [svc('shop', { app: 'shop' })];
    const out = injectAgent(p, services, 'webgw:1')!;
    const patched = applyPatch(p, injectionPatch(p, out));
    expect(patched).toEqual(out);
    expect(injectAgent(patched, services, 'webgw:1')).toBeUndefined();
  });
});

describe('admission', () => {
  it.each([
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, false],
    [
      'an UPDATE',
      {
        apiVersion: 'v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u',
          kind: { kind: 'Pod' },
          operation: 'UPDATE',
          namespace: 'shop',
          object: pod({ app: 'shop' }),
        },
      },
      false,
    ],
    [
      'not a Pod',
      {
        apiVersion: 'v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u',
          kind: { kind: 'Secret' },
          operation: 'CREATE',
          namespace: 'shop',
          object: pod({ app: 'shop' }),
        },
      },
      false,
    ],
    [
      'a selected Pod CREATE',
      {
        apiVersion: 'v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u',
          kind: { kind: 'Pod' },
          operation: 'CREATE',
          namespace: 'shop',
          object: pod({ app: 'shop' }),
        },
      },
      true,
    ],
  ])('%s: always allowed, patched: %s', async (_name, review, patched) => {
    const { admit } = await import('../../src/controller/webhook/server.ts');
    const res = admit(review as never, () => [svc('shop', { app: 'shop' })], 'webgw:1');
    expect(res.allowed).toBe(true);
    expect(res.patch !== undefined).toBe(patched);
    if (patched)
      expect(JSON.parse(Buffer.from(res.patch!, 'base64').toString())).toEqual(
        expect.arrayContaining([expect.objectContaining({ path: '/spec/initContainers' })]),
      );
  });
});

describe('connector Deployment', () => {
  it('runs the agent as a plain container with the credential Secret and no API token', async () => {
    const { connectorDeployment } = await import('../../src/controller/exposedservice/connector.ts');
    const d = connectorDeployment(
      { ...svc('shop', {}, 'Connector'), metadata: { name: 'shop', namespace: 'shop', uid: 'u1' } },
      'webgw:1',
    ) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(d.metadata).toMatchObject({
      name: 'webgw-connector-shop',
      namespace: 'shop',
      ownerReferences: [{ kind: 'ExposedService', name: 'shop', uid: 'u1', controller: true }],
    });
    expect(d.spec.replicas).toBe(2);
    const pod = d.spec.template.spec;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.containers).toHaveLength(1);
    expect(pod.containers[0]).toMatchObject({
      name: 'webgw-agent',
      image: 'webgw:1',
      args: ['agent', '--config', '/etc/webgw-agent/agent.yaml'],
    });
    expect(pod.containers[0].restartPolicy).toBeUndefined();
    expect(pod.containers[0].volumeMounts).toEqual([
      { name: 'webgw-agent-credentials', mountPath: '/etc/webgw-agent', readOnly: true },
    ]);
    expect(pod.volumes).toEqual([
      { name: 'webgw-agent-credentials', secret: { secretName: 'webgw-agent-shop', defaultMode: 0o440 } },
    ]);
    // The group the 0440 files are readable by: set, because a real node drops the image's group.
    expect(pod.securityContext).toMatchObject({ runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532 });
  });
});
