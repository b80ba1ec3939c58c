/**
 * The controller as the end-to-end cluster tests run it: in the test process, webhook served on
 * loopback with its own TLS (the controller writes the configuration's caBundle), pod injection
 * enabled for the given tenant namespaces; and the checks the tests wait on before they run
 * the data plane from what it rendered.
 */
import { X509Certificate } from 'node:crypto';
import { createLogger } from '../../src/common/log.ts';
import { Manager, type ManagerOptions } from '../../src/controller/manager.ts';
import { loadKubeConfig } from '../../src/controller/runtime/kube.ts';
import {
  WEBHOOK_WORKER,
  eventually,
  freeWildcardPort,
  injectorConfiguration,
  installCrdsAndNamespace,
  kubectl,
  kubectlOk,
  plane,
} from './helpers.ts';
import type { PodSpec } from './run-container.ts';

export interface ControllerUnderTest {
  manager: Manager;
  close(): Promise<void>;
}

/** How often the controllers under test read the gateways' session tables. */
export const SESSION_PROBE_INTERVAL_MS = 1000;

export async function startControllerWithWebhook(opts: {
  namespace: string;
  tenants: string[];
  configurationName: string;
  manager?: Partial<ManagerOptions>;
}): Promise<ControllerUnderTest> {
  await installCrdsAndNamespace(opts.namespace);
  for (const tenant of opts.tenants) {
    await kubectl(['create', 'namespace', tenant]);
    await kubectlOk(['label', 'namespace', tenant, `${opts.configurationName}=enabled`, '--overwrite']);
  }
  const port = await freeWildcardPort();
  await kubectlOk(
    ['apply', '-f', '-'],
    injectorConfiguration({
      name: opts.configurationName,
      port,
      namespaceSelector: { [opts.configurationName]: 'enabled' },
    }),
  );
  const manager = new Manager({
    kc: loadKubeConfig(plane().kubeconfig),
    namespace: opts.namespace,
    image: 'webgw:e2e',
    leaderElection: false,
    logger: createLogger({ test: opts.configurationName }, { level: 'error' }),
    webhook: {
      address: '127.0.0.1',
      port,
      hosts: ['127.0.0.1'],
      configurationName: opts.configurationName,
      workerFile: WEBHOOK_WORKER,
    },
    sessionProbeIntervalMs: SESSION_PROBE_INTERVAL_MS,
    ...opts.manager,
  });
  await manager.start();
  return {
    manager,
    close: async () => {
      await kubectl(['delete', 'mutatingwebhookconfiguration', opts.configurationName]);
      await manager.close();
    },
  };
}

export async function waitForCondition(
  kind: string,
  name: string,
  namespace: string | undefined,
  type: string,
  timeoutMs = 90_000,
): Promise<void> {
  const where = namespace ? ['-n', namespace] : [];
  await eventually(
    async () =>
      (
        await kubectlOk([
          'get',
          kind,
          name,
          ...where,
          '-o',
          `jsonpath={.status.conditions[?(@.type=="${type}")].status}`,
        ])
      ).trim() === 'True',
    timeoutMs,
    `${kind} ${name} ${type}`,
  );
}

export interface ConditionView {
  status: string;
  reason: string;
  message: string;
}

/** A condition as the API server has it now (undefined when absent). */
export async function conditionOf(
  kind: string,
  name: string,
  namespace: string | undefined,
  type: string,
): Promise<ConditionView | undefined> {
  const where = namespace ? ['-n', namespace] : [];
  const text = await kubectlOk([
    'get',
    kind,
    name,
    ...where,
    '-o',
    `jsonpath={.status.conditions[?(@.type=="${type}")]}`,
  ]);
  return text.trim() ? (JSON.parse(text) as ConditionView) : undefined;
}

/** Until the condition is as `check` wants it; returns it. */
export function waitForConditionMatching(
  kind: string,
  name: string,
  namespace: string | undefined,
  type: string,
  check: (c: ConditionView) => boolean,
  timeoutMs = 30_000,
): Promise<ConditionView> {
  return eventually(
    async () => {
      const c = await conditionOf(kind, name, namespace, type);
      return c && check(c) ? c : undefined;
    },
    timeoutMs,
    `${kind} ${name} ${type} as expected`,
  );
}

/** Until the gateway's ConfigMap admits the ExposedService's current certificate for it. */
export async function waitForAdmission(
  gateway: string,
  namespace: string,
  tenant: string,
  service: string,
): Promise<void> {
  const key = `${gateway.replaceAll('.', '\\.')}\\.crt`;
  const certificate = new X509Certificate(
    Buffer.from(
      await kubectlOk(['get', 'secret', `webgw-agent-${service}`, '-n', tenant, '-o', `jsonpath={.data.${key}}`]),
      'base64',
    ),
  );
  await eventually(
    async () =>
      (
        await kubectlOk([
          'get',
          'cm',
          `webgw-gw-${gateway}-config`,
          '-n',
          namespace,
          '-o',
          'jsonpath={.data.admitted-agents\\.txt}',
        ])
      ).includes(certificate.serialNumber),
    60_000,
    `gateway ${gateway} to admit ${tenant}/${service}`,
  );
}

/**
 * Creates a tenant's workload pod (retrying until the namespace's default ServiceAccount exists)
 * and returns its spec as admitted: with the agent sidecar when the webhook injected it.
 */
export async function createWorkloadPod(
  namespace: string,
  name: string,
  labels: Record<string, string>,
): Promise<PodSpec> {
  const manifest = `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: ${namespace}, labels: ${JSON.stringify(labels)}}\nspec:\n  containers: [{name: app, image: registry.invalid/${name}:1}]\n`;
  await eventually(async () => (await kubectl(['apply', '-f', '-'], manifest)).code === 0, 30_000, `pod ${name}`);
  return JSON.parse(await kubectlOk(['get', 'pod', name, '-n', namespace, '-o', 'jsonpath={.spec}'])) as PodSpec;
}
