/**
 * Runs a container of a pod spec the controller or the webhook produced as a local process:
 * the same arguments and environment, with every volume's ConfigMap/Secret contents written
 * under a scratch root that stands in for the container's filesystem (paths in the arguments
 * are rebased onto it). The image's entrypoint is `webgw`, so the process is this repository's
 * CLI. What cannot be emulated here: the security context and read-only mounts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnWebgw, type WebgwProcess } from '../helpers/processes.ts';
import { kubectlOk } from './helpers.ts';

interface Container {
  name: string;
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

export async function runContainerLocally(container: Container, volumes: readonly Volume[], namespace: string, root: string): Promise<WebgwProcess> {
  await writeMounts(container, volumes, namespace, root);
  const mounts = container.volumeMounts ?? [];
  // Longest mount first, so /etc/webgw/tls is rebased before /etc/webgw.
  const prefixes = mounts.map((m) => m.mountPath).sort((a, b) => b.length - a.length);
  const args = (container.args ?? []).map((arg) => {
    const prefix = prefixes.find((p) => arg === p || arg.startsWith(`${p}/`));
    return prefix ? join(root, arg) : arg;
  });
  const env = Object.fromEntries((container.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
  return spawnWebgw(args, env);
}

/** Writes (again) what the kubelet would project into the container's volumes. */
export async function writeMounts(container: Container, volumes: readonly Volume[], namespace: string, root: string): Promise<void> {
  const mounts = container.volumeMounts ?? [];
  for (const mount of mounts) {
    const volume = volumes.find((v) => v.name === mount.name);
    if (!volume) throw new Error(`volume ${mount.name} is not in the pod spec`);
    mkdirSync(join(root, mount.mountPath), { recursive: true });
    if (volume.emptyDir) continue;
    if (!volume.configMap && !volume.secret) throw new Error(`volume ${mount.name} is neither a ConfigMap nor a Secret: it cannot be emulated`);
    const kind = volume.configMap ? 'configmap' : 'secret';
    const name = volume.configMap?.name ?? volume.secret?.secretName;
    const data = JSON.parse((await kubectlOk(['get', kind, name!, '-n', namespace, '-o', 'jsonpath={.data}'])) || '{}') as Record<string, string>;
    const dir = join(root, mount.mountPath);
    mkdirSync(dir, { recursive: true });
    for (const [key, value] of Object.entries(data)) writeFileSync(join(dir, key), kind === 'secret' ? Buffer.from(value, 'base64') : value);
  }
}
