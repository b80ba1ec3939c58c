/**
 * `npm run bench:controller [-- --services 1000 --namespaces 50 --rest 30]`: the controller at
 * scale on the project's test control plane (issue 15). A controller process as the README runs
 * it (leader election, webhook, admin port) watches 2 Gateways on fake farmer nodes; N
 * ExposedServices in M namespaces are created at once. Measured:
 *
 * - convergence: time until every ExposedService is Programmed (its credential Secret written,
 *   its status current), and the curve of it;
 * - during the burst: /healthz and admission-webhook latency (p50/p99/max, one request every
 *   100 ms each, from a probe thread of the benchmark's own), the longest event-loop stall
 *   (prom-client's per-scrape maximum);
 * - controller RSS and CPU: at start, at convergence, over a rest window;
 * - at rest: writes (the controller's own counter) and API requests per second (the API server's
 *   counter, minus the plane's own rate measured before the controller started);
 * - SIGTERM during a second burst: time to exit, and whether the Lease was released.
 *
 * Results: bench/results/controller-<N>-<label>.json and a table on stdout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  CustomObjectsApi,
  CoordinationV1Api,
  KubeConfig,
  makeInformer,
  type Informer,
  type KubernetesObject,
  type ObjectCache,
} from '@kubernetes/client-node';
import { ControlPlane, repoRoot } from '../test/cluster/plane.ts';
import { fakeNode } from '../test/cluster/helpers.ts';
import { freeWildcardPort } from '../test/helpers/ports.ts';
import { httpGet, startMonitors } from './lib/controller-monitors.ts';
import { runKubectl, sleep, treeCpuSeconds, treeRssMiB } from './lib/controller-probes.ts';

const { values } = parseArgs({
  options: {
    services: { type: 'string', default: '1000' },
    namespaces: { type: 'string', default: '50' },
    rest: { type: 'string', default: '30' },
    timeout: { type: 'string', default: '1500' },
    // Builds before issue 15 said Ready=True where later ones say Programmed=True (credentials written).
    condition: { type: 'string', default: 'Programmed' },
    label: { type: 'string', default: 'current' },
  },
});
const CONDITION = values.condition;
const N = Number(values.services);
const NAMESPACES = Number(values.namespaces);
const REST_S = Number(values.rest);
const TIMEOUT_S = Number(values.timeout);
const NS = 'webgw-system';
const GATEWAYS = ['bench-eu', 'bench-us'];

const log = (line: string): void => {
  process.stdout.write(`[bench:controller] ${line}\n`);
};

interface Sample {
  t: number;
  programmed: number;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'webgw-bench-controller-'));
  const plane = new ControlPlane(dir);
  let controller: ChildProcess | undefined;
  try {
    await plane.start(log);
    const kc = new KubeConfig();
    kc.loadFromFile(plane.kubeconfig);
    const kubectl = (args: string[], input?: string): Promise<string> => runKubectl(plane.kubeconfig, args, input);
    await kubectl(['apply', '--server-side', '-f', join(repoRoot(), 'charts/webgw/crds')]);
    await kubectl([
      'wait',
      '--for=condition=Established',
      'crd/gateways.webgw.io',
      'crd/exposedservices.webgw.io',
      '--timeout=60s',
    ]);
    await kubectl(['create', 'namespace', NS]);
    await kubectl(
      ['apply', '-f', '-'],
      GATEWAYS.map(
        (
          gw,
          i,
        ) => `${fakeNode({ name: `${gw}-farmer`, labels: { 'bench-farmer': gw }, externalIp: `198.18.60.${i + 1}` })}
---
apiVersion: webgw.io/v1alpha1
kind: Gateway
metadata: {name: ${gw}}
spec:
  domain: ${gw}.bench.example
  placement: {nodeSelector: {bench-farmer: ${gw}}}
  listeners: {http: {port: 80}, tcp: {portRange: {from: 20000, to: 29999}}, tunnel: {port: 8443}}
  hostnamePolicy: {external: Allowed}
  limits: {maxServicesPerNamespace: ${Math.max(100, Math.ceil(N / NAMESPACES) + 10)}}
`,
      ).join('---\n'),
    );
    await kubectl(
      ['apply', '-f', '-'],
      `apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: webgw-bench-injector}
webhooks: []
`,
    );

    // The plane's own request rate (kube-controller-manager, scheduler, kwok) without us.
    const apiBase0 = await apiRequests(plane);
    await sleep(20_000);
    const apiBase1 = await apiRequests(plane);
    const baselineRps = (apiBase1.total - apiBase0.total) / 20;

    const admin = await freeWildcardPort();
    const webhook = await freeWildcardPort();
    controller = spawn(
      process.execPath,
      [
        join(repoRoot(), 'src/cli/main.ts'),
        'controller',
        '--kubeconfig',
        plane.kubeconfig,
        '--namespace',
        NS,
        '--image',
        'webgw:bench',
        '--leader-elect',
        '--admin',
        `127.0.0.1:${admin}`,
        '--webhook',
        `127.0.0.1:${webhook}`,
        '--webhook-host',
        '127.0.0.1',
        '--webhook-configuration',
        'webgw-bench-injector',
      ],
      // WEBGW_BENCH_CONTROLLER_NODE_OPTIONS: e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` (written at exit).
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: {
          ...process.env,
          WEBGW_LOG_LEVEL: 'warn',
          NODE_OPTIONS: process.env.WEBGW_BENCH_CONTROLLER_NODE_OPTIONS ?? '',
        },
      },
    );
    const errors: string[] = [];
    controller.stderr!.setEncoding('utf8').on('data', (d: string) => {
      for (const l of d.split('\n')) if (l.trim() && errors.length < 200) errors.push(l.slice(0, 400));
    });
    const pid = controller.pid!;
    await waitFor(async () => (await httpGet(admin, '/readyz')).status === 200, 60_000, 'controller ready');
    await waitFor(
      async () =>
        (await kubectl(['get', 'wgw', '-o', 'jsonpath={.items[*].status.conditions[?(@.type=="Programmed")].status}']))
          .split(' ')
          .filter((s) => s === 'True').length === GATEWAYS.length,
      120_000,
      'gateways Programmed',
    );
    await sleep(5000);
    const start = { rssMiB: treeRssMiB(pid), cpuS: treeCpuSeconds(pid) };
    log(`controller up: ${start.rssMiB.toFixed(0)} MiB`);

    // The burst.
    const namespaces = Array.from({ length: NAMESPACES }, (_, i) => `bench-t${i}`);
    await kubectl(
      ['apply', '-f', '-'],
      namespaces.map((n) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${n}}\n`).join('---\n'),
    );
    const custom = kc.makeApiClient(CustomObjectsApi);
    // Progress from a watch (a list of every object each second would load the API server the
    // controller is measured against).
    const watched = makeInformer(
      kc,
      '/apis/webgw.io/v1alpha1/exposedservices',
      () =>
        custom.listClusterCustomObject({ group: 'webgw.io', version: 'v1alpha1', plural: 'exposedservices' }) as never,
    ) as Informer<Xsvc> & ObjectCache<Xsvc>;
    await watched.start();
    const monitors = startMonitors(admin, webhook);
    const burstStart = Date.now();
    const cpuAtBurst = treeCpuSeconds(pid);
    let createdSeconds: number | undefined;
    const creating = createServices(custom, namespaces, 0, N, 32).then(() => {
      createdSeconds = (Date.now() - burstStart) / 1000;
    });
    const curve: Sample[] = [];
    let converged: number | undefined;
    while (Date.now() - burstStart < TIMEOUT_S * 1000) {
      const programmed = countProgrammed(watched.list());
      const t = (Date.now() - burstStart) / 1000;
      if (curve.length === 0 || t - curve.at(-1)!.t >= 2 || programmed >= N) curve.push({ t, programmed });
      if (programmed >= N) {
        converged = t;
        break;
      }
      await sleep(250);
    }
    await creating;
    const reconciles = await reconcileCounts(admin);
    const during = await monitors.stop();
    const atConvergence = { rssMiB: treeRssMiB(pid), cpuS: treeCpuSeconds(pid) - cpuAtBurst };
    log(
      `all created after ${createdSeconds} s; converged: ${converged ?? 'NO'} s; RSS ${atConvergence.rssMiB.toFixed(0)} MiB`,
    );

    // At rest.
    await sleep(10_000);
    const rest0 = {
      cpu: treeCpuSeconds(pid),
      rss: treeRssMiB(pid),
      api: await apiRequests(plane),
      writes: await controllerWrites(admin),
    };
    await sleep(REST_S * 1000);
    const rest1 = {
      cpu: treeCpuSeconds(pid),
      rss: treeRssMiB(pid),
      api: await apiRequests(plane),
      writes: await controllerWrites(admin),
    };
    const rest = {
      seconds: REST_S,
      cpuShareOfOneCore: (rest1.cpu - rest0.cpu) / REST_S,
      rssMiB: [rest0.rss, rest1.rss],
      apiRequestsPerSecond: (rest1.api.total - rest0.api.total) / REST_S - baselineRps,
      apiRequestsPerSecondByKind: diffKinds(rest0.api.byKind, rest1.api.byKind, REST_S),
      // Lease renewals are the leader's heartbeat (every 2 s), not reconcile output.
      writes: diffKinds(rest0.writes, rest1.writes, 1),
    };
    log(
      `rest: CPU ${(rest.cpuShareOfOneCore * 100).toFixed(1)} %, ${rest.apiRequestsPerSecond.toFixed(2)} API req/s beyond the plane's ${baselineRps.toFixed(2)}, writes ${JSON.stringify(rest.writes)}`,
    );

    // SIGTERM during a second burst.
    const second = createServices(custom, namespaces, N, Math.max(100, Math.floor(N / 2)), 32).catch(() => undefined);
    await sleep(3000);
    const termAt = Date.now();
    controller.kill('SIGTERM');
    await Promise.race([once(controller, 'exit'), sleep(120_000)]);
    const exitMs = controller.exitCode === null && controller.signalCode === null ? undefined : Date.now() - termAt;
    const lease = await kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: 'webgw-controller', namespace: NS });
    const sigterm = { exitMs, leaseHolderAfterExit: lease.spec?.holderIdentity ?? '' };
    await second;
    await watched.stop();
    log(
      `SIGTERM during a burst: exited after ${exitMs ?? 'NEVER'} ms; lease holder after exit: ${JSON.stringify(sigterm.leaseHolderAfterExit)}`,
    );

    const result = {
      label: values.label,
      date: new Date().toISOString(),
      services: N,
      namespaces: NAMESPACES,
      gateways: GATEWAYS.length,
      createdSeconds,
      convergedSeconds: converged,
      curve,
      burst: { ...during, cpuSeconds: atConvergence.cpuS, reconciles },
      rssMiB: { start: start.rssMiB, atConvergence: atConvergence.rssMiB, rest: rest.rssMiB },
      rest,
      baselineApiRequestsPerSecond: baselineRps,
      sigterm,
      controllerWarnings: errors.slice(0, 20),
    };
    const out = join(repoRoot(), 'bench', 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, `controller-${N}-${values.label}.json`), `${JSON.stringify(result, null, 2)}\n`);
    printTable(result);
  } finally {
    if (controller && controller.exitCode === null) controller.kill('SIGKILL');
    await plane.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function createServices(
  custom: CustomObjectsApi,
  namespaces: string[],
  from: number,
  count: number,
  concurrency: number,
): Promise<void> {
  let next = from;
  const worker = async (): Promise<void> => {
    while (next < from + count) {
      const i = next++;
      const namespace = namespaces[i % namespaces.length]!;
      const body = {
        apiVersion: 'webgw.io/v1alpha1',
        kind: 'ExposedService',
        metadata: { name: `svc-${i}`, namespace },
        spec: {
          gateways: GATEWAYS.map((name) => ({ name })),
          selector: { app: `svc-${i}` },
          backend: { port: 8080 },
          routes: [{ protocol: 'HTTP', hostnames: [`svc-${i}.bench.example`], subdomain: `svc-${i}` }],
        },
      };
      for (let attempt = 0; ; attempt++) {
        try {
          await custom.createNamespacedCustomObject({
            group: 'webgw.io',
            version: 'v1alpha1',
            namespace,
            plural: 'exposedservices',
            body,
          });
          break;
        } catch (err) {
          if (attempt > 5) throw err;
          await sleep(200);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

type Xsvc = KubernetesObject & {
  metadata: { generation?: number };
  status?: { observedGeneration?: number; conditions?: Array<{ type: string; status: string }> };
};

function countProgrammed(items: readonly Xsvc[]): number {
  return items.filter(
    (x) =>
      x.status?.observedGeneration === x.metadata.generation &&
      x.status?.conditions?.some((c) => c.type === CONDITION && c.status === 'True'),
  ).length;
}

/** Reconciles so far, by controller and result (the controller's own counter). */
async function reconcileCounts(admin: number): Promise<Record<string, number>> {
  const text = (await httpGet(admin, '/metrics')).body;
  return Object.fromEntries(
    [...text.matchAll(/^webgw_controller_reconcile_total\{controller="([^"]*)",result="([^"]*)"\} (\S+)$/gm)].map(
      (m) => [`${m[1]} ${m[2]}`, Number(m[3])],
    ),
  );
}

/** The API server's request counter (all clients), total and by verb+resource. */
async function apiRequests(plane: ControlPlane): Promise<{ total: number; byKind: Map<string, number> }> {
  const text = await new Promise<string>((resolve, reject) => {
    const req = request(
      `${plane.apiserverUrl}/metrics`,
      {
        ca: readFileSync(join(plane.dir, 'ca.crt')),
        cert: readFileSync(join(plane.dir, 'admin.crt')),
        key: readFileSync(join(plane.dir, 'admin.key')),
      },
      (res) => {
        let body = '';
        res
          .setEncoding('utf8')
          .on('data', (d: string) => {
            body += d;
          })
          .on('end', () => resolve(body));
      },
    );
    req.on('error', reject).end();
  });
  const byKind = new Map<string, number>();
  let total = 0;
  for (const m of text.matchAll(/^apiserver_request_total\{([^}]*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    const v = Number(m[2]);
    total += v;
    byKind.set(key, (byKind.get(key) ?? 0) + v);
  }
  return { total, byKind };
}

function diffKinds(a: Map<string, number>, b: Map<string, number>, seconds: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of b) {
    const d = (v - (a.get(k) ?? 0)) / seconds;
    if (d >= 0.05) out[k] = Math.round(d * 100) / 100;
  }
  return out;
}

/** The controller's own count of its writes by verb (empty for builds without the counter). */
async function controllerWrites(admin: number): Promise<Map<string, number>> {
  const text = (await httpGet(admin, '/metrics')).body;
  return new Map(
    [...text.matchAll(/^webgw_controller_api_writes_total\{verb="([^"]*)"\} (\S+)$/gm)].map((m) => [
      m[1]!,
      Number(m[2]),
    ]),
  );
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

function printTable(r: {
  services: number;
  createdSeconds?: number;
  convergedSeconds?: number;
  burst: Record<string, unknown>;
  rssMiB: Record<string, unknown>;
  rest: Record<string, unknown>;
  sigterm: Record<string, unknown>;
}): void {
  const rows: Array<[string, unknown]> = [
    ['services', r.services],
    ['all created (s)', r.createdSeconds],
    ['converged (s)', r.convergedSeconds ?? 'not within the timeout'],
    ['healthz ms p50/p99/max', r.burst.healthzMs],
    ['webhook ms p50/p99/max', r.burst.webhookMs],
    ['longest event-loop stall (ms)', r.burst.eventLoopStallMaxMs],
    ['probe thread loop delay max (ms)', r.burst.probeLoopDelayMaxMs],
    ['RSS MiB start / converged / rest', r.rssMiB],
    ['rest', r.rest],
    ['SIGTERM during a burst', r.sigterm],
  ];
  for (const [k, v] of rows) log(`${k.padEnd(34)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
