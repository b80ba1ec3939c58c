/**
 * Loaded with `node --import` into a process a cluster test runs in place of a pod
 * (service-network.ts): names in WEBGW_TEST_CLUSTER_DNS (a JSON object, name → IPv4 address)
 * resolve as the cluster's DNS would resolve a Service's name; every other name goes to the
 * system resolver. `net.connect` looks names up through `dns.lookup`, so wrapping it suffices.
 */
import dns from 'node:dns';

type Callback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

const names = new Map(Object.entries(JSON.parse(process.env.WEBGW_TEST_CLUSTER_DNS ?? '{}') as Record<string, string>));
const systemLookup = dns.lookup as unknown as (hostname: string, options: object, callback: Callback) => void;

function clusterLookup(hostname: string, options: number | dns.LookupOptions | Callback, callback?: Callback): void {
  const done = (typeof options === 'function' ? options : callback) as Callback;
  const opts: dns.LookupOptions =
    typeof options === 'object' ? options : typeof options === 'number' ? { family: options } : {};
  // A pod's resolv.conf searches <ns>.svc.cluster.local, svc.cluster.local and cluster.local.
  const address = names.get(hostname.replace(/\.$/, '').replace(/\.cluster\.local$/, ''));
  if (!address) {
    systemLookup(hostname, opts, done);
    return;
  }
  process.nextTick(() => (opts.all ? done(null, [{ address, family: 4 }]) : done(null, address, 4)));
}

(dns as { lookup: unknown }).lookup = clusterLookup;
