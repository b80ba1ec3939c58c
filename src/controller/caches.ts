/**
 * Every resource the controller watches, declared in one table: what it is, where it is watched,
 * and by which label it is narrowed. The caches answer the reconcilers' reads; what each change
 * queues is wired separately (manager.ts, routeEvents), as controller-runtime separates a
 * cache from the For/Owns/Watches of its controllers.
 */
import type {
  KubeConfig,
  KubernetesListObject,
  KubernetesObject,
  V1DaemonSet,
  V1Deployment,
  V1Namespace,
  V1Node,
  V1Pod,
  V1Secret,
} from '@kubernetes/client-node';
import type { Clock } from '../common/clock.ts';
import type { Logger } from '../common/log.ts';
import { GROUP, VERSION, type ExposedService, type Gateway } from '../crds/types.ts';
import { GATEWAY_LABEL } from './gateway/desired.ts';
import { Watched } from './runtime/informer.ts';
import type { KubeClient } from './runtime/kube.ts';

/** The label on a tenant's credential Secret: the ExposedService it belongs to. */
export const SERVICE_LABEL = 'webgw.io/exposed-service';

export interface ControllerCaches {
  gateways: Watched<Gateway & KubernetesObject>;
  services: Watched<ExposedService & KubernetesObject>;
  namespaces: Watched<V1Namespace>;
  /** Tenants' agent credential Secrets, in every namespace (SERVICE_LABEL). */
  credentialSecrets: Watched<V1Secret>;
  /** What the controller made in its own namespace for the Gateways (GATEWAY_LABEL). */
  secrets: Watched<V1Secret>;
  configMaps: Watched<KubernetesObject>;
  pods: Watched<V1Pod>;
  daemonSets: Watched<V1DaemonSet>;
  deployments: Watched<V1Deployment>;
  /** Node addresses become Gateway addresses. */
  nodes: Watched<V1Node>;
}

export interface CacheOptions {
  kc: KubeConfig;
  client: KubeClient;
  /** The controller's namespace, where the Gateways' objects live. */
  namespace: string;
  clock: Clock;
  logger: Logger;
}

/** What the manager starts, stops and asks whether it has synced, for every cache alike. */
export type WatchHandle = Pick<Watched<KubernetesObject>, 'start' | 'close' | 'hasSynced'>;

export function createCaches(opts: CacheOptions): { caches: ControllerCaches; all: WatchHandle[] } {
  const { core, apps, custom } = opts.client;
  const namespace = opts.namespace;
  const all: WatchHandle[] = [];
  const watch = <T extends KubernetesObject>(
    path: string,
    list: () => Promise<KubernetesListObject<T>>,
    labelSelector?: string,
  ): Watched<T> => {
    const w = new Watched<T>({
      kc: opts.kc,
      path,
      list,
      logger: opts.logger,
      clock: opts.clock,
      ...(labelSelector ? { labelSelector } : {}),
    });
    all.push(w);
    return w;
  };
  const customList =
    <T extends KubernetesObject>(plural: string) =>
    (): Promise<KubernetesListObject<T>> =>
      custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural }) as Promise<KubernetesListObject<T>>;
  const ours = GATEWAY_LABEL;
  const caches: ControllerCaches = {
    gateways: watch(`/apis/${GROUP}/${VERSION}/gateways`, customList<Gateway & KubernetesObject>('gateways')),
    services: watch(
      `/apis/${GROUP}/${VERSION}/exposedservices`,
      customList<ExposedService & KubernetesObject>('exposedservices'),
    ),
    namespaces: watch('/api/v1/namespaces', () => core.listNamespace()),
    credentialSecrets: watch(
      '/api/v1/secrets',
      () => core.listSecretForAllNamespaces({ labelSelector: SERVICE_LABEL }),
      SERVICE_LABEL,
    ),
    secrets: watch(
      `/api/v1/namespaces/${namespace}/secrets`,
      () => core.listNamespacedSecret({ namespace, labelSelector: ours }),
      ours,
    ),
    configMaps: watch(
      `/api/v1/namespaces/${namespace}/configmaps`,
      () => core.listNamespacedConfigMap({ namespace, labelSelector: ours }),
      ours,
    ),
    pods: watch(
      `/api/v1/namespaces/${namespace}/pods`,
      () => core.listNamespacedPod({ namespace, labelSelector: ours }),
      ours,
    ),
    daemonSets: watch(
      `/apis/apps/v1/namespaces/${namespace}/daemonsets`,
      () => apps.listNamespacedDaemonSet({ namespace, labelSelector: ours }),
      ours,
    ),
    deployments: watch(
      `/apis/apps/v1/namespaces/${namespace}/deployments`,
      () => apps.listNamespacedDeployment({ namespace, labelSelector: ours }),
      ours,
    ),
    nodes: watch('/api/v1/nodes', () => core.listNode()),
  };
  return { caches, all };
}
