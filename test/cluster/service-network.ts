/**
 * Cluster DNS and kube-proxy for processes a cluster test runs in place of pods
 * (run-container.ts). kwok runs no network, so a Service is emulated on loopback: its name
 * resolves (cluster-dns-preload.ts) to a loopback address of its own, where a forwarder takes
 * each connection to the Service's port and connects it, round robin as kube-proxy would, to a
 * ready endpoint of the Service's EndpointSlices at the target port. The EndpointSlices are the
 * ones the real kube-controller-manager writes from the pods kwok reports Ready, so a test
 * that serves on those pod IPs (127.64.0.0/16, loopback) has the Service in the path.
 */
import { once } from 'node:events';
import { join } from 'node:path';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { relay } from '../../src/common/relay.ts';
import { kubectlOk } from './helpers.ts';

interface EndpointSlice {
  ports?: Array<{ name?: string; port?: number }>;
  endpoints?: Array<{ addresses: string[]; conditions?: { ready?: boolean } }>;
}

interface ServicePort { name?: string; port: number; protocol?: string }

export interface EmulatedService {
  /** The name the pods use, `<service>.<namespace>.svc`. */
  dnsName: string;
  address: string;
  /** For spawnWebgw / runContainerLocally: the process resolves dnsName to address. */
  env: Record<string, string>;
  nodeArgs: string[];
  /** Connections forwarded, per endpoint `ip:port`. */
  forwarded: Map<string, number>;
  close(): Promise<void>;
}

export const CLUSTER_DNS_PRELOAD = ['--import', join(__dirname, 'cluster-dns-preload.ts')];

async function readyEndpoints(namespace: string, service: string, portName: string | undefined): Promise<string[]> {
  const list = JSON.parse(await kubectlOk(['get', 'endpointslices', '-n', namespace, '-l', `kubernetes.io/service-name=${service}`, '-o', 'json'])) as { items: EndpointSlice[] };
  const targets: string[] = [];
  for (const slice of list.items) {
    const port = slice.ports?.find((p) => (p.name ?? '') === (portName ?? ''))?.port;
    if (port === undefined) continue;
    for (const ep of slice.endpoints ?? []) if (ep.conditions?.ready !== false) for (const ip of ep.addresses) targets.push(`${ip}:${port}`);
  }
  return targets.sort();
}

/** `address`: a loopback address no other listener of the test uses. */
export async function emulateService(namespace: string, service: string, address: string): Promise<EmulatedService> {
  const spec = JSON.parse(await kubectlOk(['get', 'service', service, '-n', namespace, '-o', 'jsonpath={.spec.ports}'])) as ServicePort[];
  const forwarded = new Map<string, number>();
  const servers: Server[] = [];
  const open = new Set<Socket>();
  let next = 0;
  for (const servicePort of spec.filter((p) => (p.protocol ?? 'TCP') === 'TCP')) {
    const server = createServer({ allowHalfOpen: true }, (client: Socket) => {
      open.add(client);
      client.once('close', () => open.delete(client));
      client.pause();
      client.on('error', () => client.destroy());
      readyEndpoints(namespace, service, servicePort.name).then((targets) => {
        if (targets.length === 0 || client.destroyed) throw new Error('no ready endpoint');
        const target = targets[next++ % targets.length]!;
        forwarded.set(target, (forwarded.get(target) ?? 0) + 1);
        const [ip, port] = target.split(':') as [string, string];
        const upstream = connect({ host: ip, port: Number(port), allowHalfOpen: true });
        relay(client, upstream);
        client.resume();
      }).catch(() => client.destroy()); // as kube-proxy: no endpoint, the connection is refused
    });
    server.listen(servicePort.port, address);
    await once(server, 'listening');
    servers.push(server);
  }
  const dnsName = `${service}.${namespace}.svc`;
  return {
    dnsName,
    address,
    env: { WEBGW_TEST_CLUSTER_DNS: JSON.stringify({ [dnsName]: address }) },
    nodeArgs: CLUSTER_DNS_PRELOAD,
    forwarded,
    close: async () => {
      for (const socket of open) socket.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((r) => { s.close(() => r()); })));
    },
  };
}
