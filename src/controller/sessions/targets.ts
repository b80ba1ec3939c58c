/** Where the session probe reads (probe.ts), from the controller's caches. */
import type { GatewayCaches } from '../gateway/reconciler.ts';
import { GATEWAY_LABEL, dialAddress, gatewayObjectNames, tunnelServerName } from '../gateway/desired.ts';
import { secretText } from '../runtime/apply.ts';
import type { GatewayTargets } from './probe.ts';

/**
 * What the session probe reads: per Gateway whose CA exists, one target per node its running
 * proxy pods are on (pods sharing a node share its ports: a rollout's old and new process), at
 * the address agents dial.
 */
export function probeTargets(caches: GatewayCaches, namespace: string): GatewayTargets[] {
  const nodes = new Map(
    caches.nodes
      .list()
      .map((n) => [n.metadata?.name ?? '', { name: n.metadata?.name ?? '', addresses: n.status?.addresses ?? [] }]),
  );
  const out: GatewayTargets[] = [];
  for (const gw of caches.gateways.list()) {
    const name = gw.metadata.name;
    const caSecret = caches.secrets.get(gatewayObjectNames(name).caSecret, namespace);
    const certPem = secretText(caSecret, 'ca.crt');
    const keyPem = secretText(caSecret, 'ca.key');
    if (!certPem || !keyPem) continue;
    const byAddress = new Map<string, { pod: string; ready: boolean }>();
    for (const pod of caches.pods.list(namespace)) {
      if (
        pod.metadata?.labels?.[GATEWAY_LABEL] !== name ||
        pod.metadata.deletionTimestamp ||
        pod.status?.phase !== 'Running'
      )
        continue;
      const address = dialAddress(nodes.get(pod.spec?.nodeName ?? ''));
      if (!address) continue;
      const ready = pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
      const known = byAddress.get(address);
      if (!known || (ready && !known.ready)) byAddress.set(address, { pod: pod.metadata.name ?? '', ready });
    }
    out.push({
      gateway: name,
      ca: { certPem, keyPem },
      serverName: tunnelServerName(name),
      port: gw.spec.listeners.tunnel.port,
      replicas: [...byAddress].map(([address, p]) => ({ pod: p.pod, address })),
    });
  }
  return out;
}
