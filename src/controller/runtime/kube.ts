/**
 * The controller's Kubernetes client: @kubernetes/client-node underneath, a few verbs on top,
 * every write counted (the steady-state test asserts that nothing is written). Server-side apply
 * with field manager `webgw`; status through the status subresource.
 */
import {
  AdmissionregistrationV1Api,
  ApiextensionsV1Api,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesObject,
  type RequestContext,
} from '@kubernetes/client-node';
import { GROUP, VERSION } from '../../crds/types.ts';

export const FIELD_MANAGER = 'webgw';

/** How long one connection pool to the API server is used before a fresh one (rotated files). */
const REUSE_CONNECTIONS_MS = 5 * 60_000;

/**
 * client-node 2.0 builds a new undici Agent for every request, so every API call paid a TLS
 * handshake and left a pool behind until its keep-alive ran out: a fifth of the controller's CPU
 * in a 1,000-service burst, and much of its memory (issue 15). This KubeConfig hands out one
 * pool per cluster and user, replaced every REUSE_CONNECTIONS_MS (so rotated certificate files
 * are read again); the replaced pool closes once its requests (watches too) end.
 */
export class ConnectionReusingKubeConfig extends KubeConfig {
  private reused:
    { key: string; dispatcher: NonNullable<ReturnType<RequestContext['getDispatcher']>>; until: number } | undefined;

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const fresh = context.getDispatcher();
    if (!fresh) return;
    const key = JSON.stringify([this.getCurrentCluster(), this.getCurrentUser()]);
    const now = Date.now();
    if (this.reused && this.reused.key === key && now < this.reused.until) {
      context.setDispatcher(this.reused.dispatcher);
      void fresh.close().catch(() => {});
      return;
    }
    const old = this.reused;
    this.reused = { key, dispatcher: fresh, until: now + REUSE_CONNECTIONS_MS };
    void old?.dispatcher.close().catch(() => {});
  }
}

export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new ConnectionReusingKubeConfig();
  if (file) kc.loadFromFile(file);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

export class KubeClient {
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly custom: CustomObjectsApi;
  readonly coordination: CoordinationV1Api;
  readonly admission: AdmissionregistrationV1Api;
  readonly apiextensions: ApiextensionsV1Api;
  private readonly objects: KubernetesObjectApi;
  /** Writes sent to the API server, by verb: the steady-state check reads this. */
  readonly writes = { apply: 0, create: 0, delete: 0, status: 0, lease: 0, event: 0, webhook: 0, annotate: 0 };
  onWrite: ((verb: string) => void) | undefined;

  constructor(kc: KubeConfig) {
    this.kc = kc;
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.coordination = kc.makeApiClient(CoordinationV1Api);
    this.admission = kc.makeApiClient(AdmissionregistrationV1Api);
    this.apiextensions = kc.makeApiClient(ApiextensionsV1Api);
    this.objects = KubernetesObjectApi.makeApiClient(kc);
  }

  /** Server-side apply, forcing ownership of the fields we set (we are their only manager). */
  async apply<T extends KubernetesObject>(obj: T): Promise<T> {
    this.count('apply');
    return this.objects.patch(obj, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
  }

  async create<T extends KubernetesObject>(obj: T): Promise<T> {
    this.count('create');
    return this.objects.create(obj, undefined, undefined, FIELD_MANAGER);
  }

  /** Deletes a Secret; already gone counts as done. */
  async deleteSecret(name: string, namespace: string): Promise<void> {
    this.count('delete');
    try {
      await this.core.deleteNamespacedSecret({ name, namespace });
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
    }
  }

  /** Deletes a DaemonSet or Deployment; already gone counts as done. */
  async deleteWorkload(kind: 'DaemonSet' | 'Deployment', name: string, namespace: string): Promise<void> {
    this.count('delete');
    try {
      if (kind === 'DaemonSet') await this.apps.deleteNamespacedDaemonSet({ name, namespace });
      else await this.apps.deleteNamespacedDeployment({ name, namespace });
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
    }
  }

  /**
   * Replaces the status of a cluster-scoped webgw.io object with `status`: a merge patch on
   * /status that also deletes the fields `previous` had and `status` has not.
   */
  async patchClusterStatus(plural: string, name: string, status: object, previous: object | undefined): Promise<void> {
    this.count('status');
    await this.custom.patchClusterCustomObjectStatus(
      { group: GROUP, version: VERSION, plural, name, body: { status: replacingMergePatch(previous, status) } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  /** patchClusterStatus for a namespaced webgw.io object. */
  async patchNamespacedStatus(
    plural: string,
    namespace: string,
    name: string,
    status: object,
    previous: object | undefined,
  ): Promise<void> {
    this.count('status');
    await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        plural,
        namespace,
        name,
        body: { status: replacingMergePatch(previous, status) },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  /** Sets clientConfig.caBundle of the given webhooks (JSON patch, nothing else touched). */
  async patchWebhookCaBundles(
    name: string,
    webhooks: Array<{ index: number; add: boolean }>,
    caBundle: string,
  ): Promise<void> {
    this.count('webhook');
    const ops = webhooks.map((w) => ({
      op: w.add ? 'add' : 'replace',
      path: `/webhooks/${w.index}/clientConfig/caBundle`,
      value: caBundle,
    }));
    await this.admission.patchMutatingWebhookConfiguration(
      { name, body: ops },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
  }

  /** Sets one annotation of a pod (merge patch of metadata.annotations, nothing else). */
  async annotatePod(namespace: string, name: string, key: string, value: string): Promise<void> {
    this.count('annotate');
    await this.core.patchNamespacedPod(
      { namespace, name, body: { metadata: { annotations: { [key]: value } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  countLeaseWrite(): void {
    this.count('lease');
  }

  countEventWrite(): void {
    this.count('event');
  }

  private count(verb: keyof KubeClient['writes']): void {
    this.writes[verb] += 1;
    this.onWrite?.(verb);
  }
}

/** HTTP status of a client-node error, if it has one. */
export function statusCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown; response?: { statusCode?: unknown } };
  for (const v of [e.code, e.statusCode, e.response?.statusCode]) if (typeof v === 'number') return v;
  return undefined;
}

/**
 * A JSON merge patch (RFC 7396) that turns `previous` into `next`: `next` itself, plus null for
 * every member of an object `previous` had and `next` has not (a merge patch keeps members it
 * does not name: a status field that should go away would otherwise stay forever). Arrays and
 * values are replaced whole, as merge patches do.
 */
export function replacingMergePatch(previous: unknown, next: unknown): unknown {
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(next) || !isObject(previous)) return next;
  const patch: Record<string, unknown> = {};
  for (const key of Object.keys(previous)) if (!(key in next)) patch[key] = null;
  for (const [key, value] of Object.entries(next)) patch[key] = replacingMergePatch(previous[key], value);
  return patch;
}
