/**
 * Sidecar injection as a pure function (docs/architecture.md, Controller): given a pod and the
 * ExposedServices of its namespace, return the pod with the agent as a native sidecar (an init
 * container with restartPolicy Always, so Jobs still finish) and its credential Secret mounted
 * read-only; or the pod unchanged when no Sidecar-mode ExposedService selects it or the agent is
 * already there (injection is idempotent). The HTTP layer turns the difference into a JSON patch.
 */
import type { V1Container } from '@kubernetes/client-node';
import type { ExposedService } from '../../crds/types.ts';
import { AGENT_ADMIN_PORT, AGENT_DIR, credentialSecretName } from '../exposedservice/desired.ts';

export const AGENT_CONTAINER = 'webgw-agent';
export const AGENT_VOLUME = 'webgw-agent-credentials';
/**
 * An empty folder over the service-account token path: the ServiceAccount admission plugin
 * mounts the pod's API token into every container that has nothing there, and the agent needs
 * no Kubernetes credentials (least privilege; docs/architecture.md, Trust model).
 */
export const NO_TOKEN_VOLUME = 'webgw-agent-no-api-token';
const TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
export const INJECTED_ANNOTATION = 'webgw.io/injected-for';

type Json = Record<string, unknown>;

export interface PodLike {
  metadata?: {
    name?: string;
    generateName?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  // The pod as admission received it: fields newer than client-node's types pass through as they are.
  spec?: { initContainers?: Array<V1Container | Json>; containers?: Json[]; volumes?: Json[] } & Json;
}

/** The Sidecar-mode ExposedService whose selector matches the pod's labels (oldest first wins). */
export function selectingService(pod: PodLike, services: readonly ExposedService[]): ExposedService | undefined {
  const labels = pod.metadata?.labels ?? {};
  return [...services]
    .filter((s) => s.spec.mode === 'Sidecar' && s.spec.selector && Object.keys(s.spec.selector).length > 0)
    .filter((s) => Object.entries(s.spec.selector ?? {}).every(([k, v]) => labels[k] === v))
    .sort(
      (a, b) =>
        (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') ||
        a.metadata.name.localeCompare(b.metadata.name),
    )[0];
}

export function agentSidecar(image: string): V1Container {
  return {
    name: AGENT_CONTAINER,
    image,
    // Native sidecar (KEP-753): starts before the app, runs beside it, does not keep Jobs alive.
    restartPolicy: 'Always',
    args: ['agent', '--config', `${AGENT_DIR}/agent.yaml`],
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    // The kubelet probes from the node's network namespace, so the probe targets the pod's IP
    // (a host of 127.0.0.1 would probe the node itself: issue 13). Ready once the agent has a
    // tunnel to at least one gateway, so a rollout replaces pods only by pods that serve.
    readinessProbe: { httpGet: { port: AGENT_ADMIN_PORT, path: '/readyz' }, periodSeconds: 2, failureThreshold: 2 },
    resources: { requests: { cpu: '20m', memory: '48Mi' }, limits: { memory: '256Mi' } },
    volumeMounts: [
      { name: AGENT_VOLUME, mountPath: AGENT_DIR, readOnly: true },
      { name: NO_TOKEN_VOLUME, mountPath: TOKEN_PATH, readOnly: true },
    ],
  };
}

/** A copy of the pod with the agent injected, or undefined when nothing is to change. */
export function injectAgent(pod: PodLike, services: readonly ExposedService[], image: string): PodLike | undefined {
  const service = selectingService(pod, services);
  if (!service) return undefined;
  const spec = pod.spec ?? {};
  const already = [...(spec.initContainers ?? []), ...(spec.containers ?? [])].some((c) => c.name === AGENT_CONTAINER);
  if (already) return undefined;
  const ours = [
    // World-readable inside the pod: the kubelet writes Secret files as root, and a tenant pod's
    // fsGroup is not ours to set; only the agent container mounts this volume (issue 13).
    { name: AGENT_VOLUME, secret: { secretName: credentialSecretName(service.metadata.name), defaultMode: 0o444 } },
    // The kubelet evicts a pod whose emptyDir passes its sizeLimit, and counts the directory
    // itself (4 KiB on most filesystems): 1Ki evicted every injected pod within a minute.
    { name: NO_TOKEN_VOLUME, emptyDir: { sizeLimit: '1Mi' } },
  ];
  return {
    ...pod,
    metadata: {
      ...pod.metadata,
      annotations: { ...pod.metadata?.annotations, [INJECTED_ANNOTATION]: service.metadata.name },
    },
    spec: {
      ...spec,
      // First, so the tunnel is up before the app's own init containers and containers start.
      initContainers: [agentSidecar(image), ...(spec.initContainers ?? [])],
      volumes: [...(spec.volumes ?? []).filter((v) => v.name !== AGENT_VOLUME && v.name !== NO_TOKEN_VOLUME), ...ours],
    },
  };
}

/**
 * RFC 6902 operations turning `before` into `after` for the fields the injector touches.
 * Whole-field replacement keeps it simple and correct: admission sees one pod at a time.
 */
export function injectionPatch(before: PodLike, after: PodLike): Json[] {
  const ops: Json[] = [];
  const set = (path: string, had: unknown, value: unknown): void => {
    ops.push({ op: had === undefined ? 'add' : 'replace', path, value });
  };
  if (!before.metadata?.annotations)
    ops.push({ op: 'add', path: '/metadata/annotations', value: after.metadata?.annotations });
  else
    set(
      `/metadata/annotations/${INJECTED_ANNOTATION.replace(/~/g, '~0').replace(/\//g, '~1')}`,
      before.metadata.annotations[INJECTED_ANNOTATION],
      after.metadata?.annotations?.[INJECTED_ANNOTATION],
    );
  set('/spec/initContainers', before.spec?.initContainers, after.spec?.initContainers);
  set('/spec/volumes', before.spec?.volumes, after.spec?.volumes);
  return ops;
}
