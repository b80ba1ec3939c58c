/**
 * Runs a container of a pod spec the controller or the webhook produced as a local process:
 * the same arguments and environment, with every volume's ConfigMap/Secret contents written
 * under a scratch root that stands in for the container's filesystem (paths in the arguments
 * are rebased onto it). The image's entrypoint is the `webgw` CLI (and the gateway's command
 * the same CLI on another node binary, src/controller/image.ts), so the process is this
 * repository's CLI. What cannot be emulated here: the security context and read-only mounts.
 */
import { lstatSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGE_CLI, IMAGE_NODE, IMAGE_NODE_NET_BIND } from '../../src/controller/image.ts';
import { AGENT_CONTAINER } from '../../src/controller/webhook/injector.ts';
import { spawnWebgw, type WebgwProcess } from '../helpers/processes.ts';
import { kubectlOk } from './helpers.ts';

interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}

interface Volume {
  name: string;
  configMap?: { name: string };
  secret?: { secretName: string };
  emptyDir?: object;
}

/** What the pod's network gives the process beyond this host's: see service-network.ts. */
export interface PodNetwork {
  env: Record<string, string>;
  nodeArgs: string[];
}

/** The image's programs that are this repository's CLI (the entrypoint, or GATEWAY_COMMAND). */
function isWebgwCli(command: string[] | undefined): boolean {
  return (
    command === undefined ||
    (command.length === 2 && [IMAGE_NODE, IMAGE_NODE_NET_BIND].includes(command[0]!) && command[1] === IMAGE_CLI)
  );
}

export async function runContainerLocally(
  container: Container,
  volumes: readonly Volume[],
  namespace: string,
  root: string,
  network?: PodNetwork,
): Promise<WebgwProcess> {
  if (!isWebgwCli(container.command))
    throw new Error(
      `container ${container.name} runs ${JSON.stringify(container.command)}, not the webgw CLI of the image`,
    );
  await writeMounts(container, volumes, namespace, root);
  const mounts = container.volumeMounts ?? [];
  // Longest mount first, so /etc/webgw/tls is rebased before /etc/webgw.
  const prefixes = mounts.map((m) => m.mountPath).sort((a, b) => b.length - a.length);
  const args = (container.args ?? []).map((arg) => {
    const prefix = prefixes.find((p) => arg === p || arg.startsWith(`${p}/`));
    return prefix ? join(root, arg) : arg;
  });
  const env = Object.fromEntries(
    (container.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]),
  );
  return spawnWebgw(args, { ...network?.env, ...env }, { nodeArgs: network?.nodeArgs ?? [] });
}

let generation = 0;

/**
 * Writes a volume's files as the kubelet's AtomicWriter does: every key into a new
 * `..<timestamp>` folder, then the `..data` symlink swapped to it in one rename, each key a
 * symlink through `..data`; so a reader never sees a certificate beside the old key.
 */
function writeAtomically(dir: string, files: Record<string, Buffer | string>): void {
  const stamp = `..${Date.now()}_${++generation}`;
  mkdirSync(join(dir, stamp));
  for (const [key, value] of Object.entries(files)) writeFileSync(join(dir, stamp, key), value);
  symlinkSync(stamp, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const key of Object.keys(files)) {
    const path = join(dir, key);
    let isLink = false;
    try {
      isLink = lstatSync(path).isSymbolicLink();
    } catch {
      // absent: linked below
    }
    if (isLink) continue;
    rmSync(path, { force: true });
    symlinkSync(join('..data', key), path);
  }
  for (const entry of readdirSync(dir)) {
    if (entry.startsWith('..') && entry !== '..data' && entry !== stamp)
      rmSync(join(dir, entry), { recursive: true, force: true });
    // A key that left the volume (its symlink); folders are other volumes mounted inside this one.
    else if (!entry.startsWith('..') && !Object.hasOwn(files, entry) && lstatSync(join(dir, entry)).isSymbolicLink())
      rmSync(join(dir, entry), { force: true });
  }
}

/** Writes (again) what the kubelet would project into the container's volumes. */
export async function writeMounts(
  container: Container,
  volumes: readonly Volume[],
  namespace: string,
  root: string,
): Promise<void> {
  const mounts = container.volumeMounts ?? [];
  for (const mount of mounts) {
    const volume = volumes.find((v) => v.name === mount.name);
    if (!volume) throw new Error(`volume ${mount.name} is not in the pod spec`);
    mkdirSync(join(root, mount.mountPath), { recursive: true });
    if (volume.emptyDir) continue;
    if (!volume.configMap && !volume.secret)
      throw new Error(`volume ${mount.name} is neither a ConfigMap nor a Secret: it cannot be emulated`);
    const kind = volume.configMap ? 'configmap' : 'secret';
    const name = volume.configMap?.name ?? volume.secret?.secretName;
    const data = JSON.parse(
      (await kubectlOk(['get', kind, name!, '-n', namespace, '-o', 'jsonpath={.data}'])) || '{}',
    ) as Record<string, string>;
    const dir = join(root, mount.mountPath);
    mkdirSync(dir, { recursive: true });
    writeAtomically(
      dir,
      Object.fromEntries(
        Object.entries(data).map(([key, value]) => [key, kind === 'secret' ? Buffer.from(value, 'base64') : value]),
      ),
    );
  }
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Array<Container & { restartPolicy?: string }>;
  volumes: Volume[];
}

/** The gateway's proxy as its DaemonSet would run it on a farmer node; resolves once it listens. */
export async function runGatewayLocally(
  gateway: string,
  namespace: string,
  root: string,
): Promise<{ process: WebgwProcess; template: PodSpec }> {
  const template = JSON.parse(
    await kubectlOk(['get', 'ds', `webgw-gw-${gateway}`, '-n', namespace, '-o', 'jsonpath={.spec.template.spec}']),
  ) as PodSpec;
  const proc = await runContainerLocally(template.containers[0]!, template.volumes, namespace, root);
  await proc.waitForLog((l) => l.msg === 'tunnel endpoint listening', 20_000);
  return { process: proc, template };
}

/** The agent container of a pod spec: the injected native sidecar, or a connector's container. */
export function agentContainer(spec: PodSpec): Container {
  const agent = [...(spec.initContainers ?? []), ...spec.containers].find((c) => c.name === AGENT_CONTAINER);
  if (!agent) throw new Error(`the pod spec has no ${AGENT_CONTAINER} container`);
  return agent;
}
