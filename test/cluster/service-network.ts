/**
 * Cluster DNS and kube-proxy for processes a cluster test runs in place of pods
 * (run-container.ts). kwok runs no network, so a Service is emulated on loopback: its name
 * resolves (cluster-dns-preload.ts) to a loopback address of its own, where a forwarder takes
 * each connection to the Service's port and connects it, round robin as kube-proxy would, to a
 * ready endpoint at the target port. The endpoints are what the EndpointSlice controller would
 * list: the Ready pods the Service's selector matches, at their pod IPs. (The real controller
 * cannot write them here: kwok's pod IPs are loopback, 127.64.0.0/16, and the API server
 * rejects loopback endpoint addresses.) A test that serves on those pod IPs has the Service,
 * its selector and its target port in the path.
 */
import { once } from 'node:events';
import { join } from 'node:path';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { relay } from '../../src/common/relay.ts';
import { kubectlOk } from './helpers.ts';

interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
}
interface ServiceSpec {
  selector?: Record<string, string>;
  ports: ServicePort[];
}
interface Pod {
  status?: { podIP?: string; phase?: string; conditions?: Array<{ type: string; status: string }> };
}

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

async function readyEndpoints(
  namespace: string,
  selector: Record<string, string>,
  servicePort: ServicePort,
): Promise<string[]> {
  if (typeof servicePort.targetPort === 'string') throw new Error('named target ports are not emulated');
  const targetPort = servicePort.targetPort ?? servicePort.port;
  const labels = Object.entries(selector)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const pods = JSON.parse(await kubectlOk(['get', 'pods', '-n', namespace, '-l', labels, '-o', 'json'])) as {
    items: Pod[];
  };
  return pods.items
    .filter(
      (p) =>
        p.status?.phase === 'Running' &&
        p.status.podIP &&
        p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    )
    .map((p) => `${p.status!.podIP}:${targetPort}`)
    .sort();
}

/** `address`: a loopback address no other listener of the test uses. */
export async function emulateService(namespace: string, service: string, address: string): Promise<EmulatedService> {
  const spec = JSON.parse(
    await kubectlOk(['get', 'service', service, '-n', namespace, '-o', 'jsonpath={.spec}']),
  ) as ServiceSpec;
  if (!spec.selector)
    throw new Error(`service ${namespace}/${service} has no selector: its endpoints cannot be emulated`);
  const selector = spec.selector;
  const forwarded = new Map<string, number>();
  const servers: Server[] = [];
  const open = new Set<Socket>();
  let next = 0;
  for (const servicePort of spec.ports.filter((p) => (p.protocol ?? 'TCP') === 'TCP')) {
    const server = createServer({ allowHalfOpen: true }, (client: Socket) => {
      open.add(client);
      client.once('close', () => open.delete(client));
      client.pause();
      client.on('error', () => client.destroy());
      readyEndpoints(namespace, selector, servicePort)
        .then((targets) => {
          if (targets.length === 0 || client.destroyed) throw new Error('no ready endpoint');
          const target = targets[next++ % targets.length]!;
          forwarded.set(target, (forwarded.get(target) ?? 0) + 1);
          const [ip, port] = target.split(':') as [string, string];
          const upstream = connect({ host: ip, port: Number(port), allowHalfOpen: true });
          relay(client, upstream);
          client.resume();
        })
        .catch(() => client.destroy()); // as kube-proxy: no endpoint, the connection is refused
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
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((r) => {
              s.close(() => r());
            }),
        ),
      );
    },
  };
}
