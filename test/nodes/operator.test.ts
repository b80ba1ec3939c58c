/**
 * The operator on real nodes (issue 13), as a farmer and a tenant use it: the chart installed
 * with the image built here, a Gateway's proxy on the farmer node's host network, a tenant's
 * Deployment with the injected native sidecar on the worker node, and requests from the client
 * namespace (the Internet). The worker refuses every new connection from the client and the
 * farmer (topology.ts), so whatever reaches the app came through the tunnel its agent dialled.
 *
 * The steps build on each other and run in order.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, issueCertificate } from '../../src/pki/issue.ts';
import { CHART, helmOk } from '../cluster/chart-helpers.ts';
import { startPebble, type Pebble } from '../cluster/pebble.ts';
import { eventually, kubectl, kubectlOk, plane } from '../cluster/helpers.ts';
import { FARMER_IP, curlFromClient, loadFromClient, pods, tcpFromClient } from './helpers.ts';
import {
  APP_ON_WORKER,
  DB,
  SYSTEM,
  TCP_FROM,
  TENANT,
  WEB,
  appDeployment,
  chartValues,
  tenantObjects,
} from './sample.ts';
import { CLIENT, FARMER, WORKER, addressOf, fromClient, run, waitForClusterDns } from './topology.ts';

const PLAIN = 'plain';
const PLAIN_HOST = 'plain.shop.test';
/** A TLS route the agents terminate with a certificate through TLS-ALPN-01 (issue 16, mode 3). */
const PAY = 'pay.shop.test';
/** Where the pods reach the host (the API server's address, test/nodes/node.sh). */
const HOST_FOR_PODS = '198.18.254.1';
/** How long the tenant's pods are watched (a real kubelet evicted them after 45-60 s before). */
const UPTIME_MS = Number(process.env.WEBGW_NODES_UPTIME_MS ?? 150_000);
const LOAD_PER_SECOND = 20;
/** Failed requests a rollout may cost: none (the gateway hands its ports over, proxy/config.ts sharePorts). */
const ALLOWED_ROLLOUT_FAILURES = { 'the app': 0, 'the gateway': 0 };

describe('the operator on real nodes', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'webgw-nodes-test-'));
  const hour = { notAfter: new Date(Date.now() + 3600_000) };
  const appCa = createCA('the tenant app CA', hour);
  const caFile = join(scratch, 'app-ca.crt');
  writeFileSync(caFile, appCa.certPem);
  const figures: Record<string, unknown> = {};
  let pebble: Pebble;

  beforeAll(async () => {
    // Pebble on the host: its API where the controller pods reach the host, every name resolved
    // to the farmer, its validations dialled from the host to the farmer's :80 and :443.
    pebble = await startPebble({
      dir: scratch,
      httpPort: 80,
      tlsPort: 443,
      listenAddress: HOST_FOR_PODS,
      namesResolveTo: FARMER_IP,
    });
  });

  afterAll(async () => {
    process.stderr.write(`[nodes] figures: ${JSON.stringify(figures)}\n`);
    await pebble?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('installs with helm from the image built here: controllers Ready, one leader, the webhook with its caBundle', async () => {
    const started = Date.now();
    await helmOk(
      ['install', 'webgw', CHART, '-n', SYSTEM, '--create-namespace', '--values', '-', '--wait', '--timeout', '180s'],
      chartValues({ acmeCaPem: pebble.caPem }),
    );
    figures.helmInstallMs = Date.now() - started;
    const controllers = await pods(SYSTEM, 'app.kubernetes.io/component=controller');
    expect(controllers).toHaveLength(2);
    expect(controllers.every((p) => p.ready)).toBe(true);
    figures.controllerStartMs = controllers.map((p) => p.startMs);
    const holder = await eventually(
      async () =>
        (await kubectlOk(['get', 'lease', '-n', SYSTEM, '-o', 'jsonpath={.items[*].spec.holderIdentity}'])).trim(),
      60_000,
      'a leader',
    );
    // The holder identity is <pod name>_<process id>.
    expect(controllers.map((p) => p.name)).toContain(holder.split(/\s+/)[0]!.replace(/_[^_]*$/, ''));
    await eventually(
      async () =>
        (
          await kubectlOk([
            'get',
            'mutatingwebhookconfigurations',
            '-o',
            'jsonpath={.items[*].webhooks[*].clientConfig.caBundle}',
          ])
        ).trim().length > 100,
      60_000,
      'the webhook caBundle',
    );
  });

  it('runs the Gateway proxy on the farmer: host network, 80 and 443 bound as uid 65532 with NET_BIND_SERVICE only', async () => {
    const proxy = await eventually(
      async () => {
        const found = await pods(SYSTEM, 'webgw.io/gateway=edge');
        return found.length === 1 && found[0]!.ready ? found[0] : undefined;
      },
      120_000,
      'the gateway pod Ready',
    );
    expect(proxy!.node).toBe(FARMER.name);
    expect(proxy!.ip).toBe(FARMER_IP);
    figures.gatewayStartMs = proxy!.startMs;
    const listening = (await run('ip', ['netns', 'exec', FARMER.name, 'ss', '-Hltnp', 'sport = :80 or sport = :443']))
      .stdout;
    const pids = [...new Set([...listening.matchAll(/pid=(\d+)/g)].map((m) => m[1]))];
    expect(listening).toMatch(/:80\b/);
    expect(listening).toMatch(/:443\b/);
    expect(pids).toHaveLength(1);
    const status = readFileSync(`/proc/${pids[0]}/status`, 'utf8');
    expect(status).toMatch(/^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
    expect(status).toMatch(/^Gid:\s+65532\s+65532\s+65532\s+65532$/m);
    // CAP_NET_BIND_SERVICE is bit 10: 0x400, and nothing else, effective or bounding.
    expect(status).toMatch(/^CapEff:\s+0+400$/m);
    expect(status).toMatch(/^CapBnd:\s+0+400$/m);
    expect((await curlFromClient(`http://${FARMER_IP}/`, 'nobody.shop.test')).status).toBe(404);
  });

  it('serves a tenant app through its injected sidecar: HTTP by Host, TLS by SNI, TCP; the worker refuses direct connections', async () => {
    const cert = issueCertificate(appCa, { commonName: DB, usage: 'server', hosts: [DB] }, hour);
    await kubectlOk(['apply', '-f', '-'], tenantObjects(cert));
    // The webhook injects only pods an accepted ExposedService selects: the Deployment comes after.
    await eventually(
      async () =>
        (await kubectlOk([
          'get',
          'xsvc',
          'shop',
          '-n',
          TENANT,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Accepted")].status}',
        ])) === 'True',
      60_000,
      'the ExposedService accepted',
    );
    await kubectlOk(['apply', '-f', '-'], appDeployment(TENANT, 2, APP_ON_WORKER));
    const started = Date.now();
    await kubectlOk(['rollout', 'status', 'deployment/app', '-n', TENANT, '--timeout=120s']);
    figures.appAvailableMs = Date.now() - started;
    const app = await pods(TENANT, 'app=app');
    figures.appPodStartMs = app.map((p) => p.startMs);
    expect(app.every((p) => p.ready && p.node === WORKER.name)).toBe(true);
    // A native sidecar: an init container that keeps running.
    const spec = JSON.parse(await kubectlOk(['get', 'pod', app[0]!.name, '-n', TENANT, '-o', 'json'])).spec as {
      initContainers?: Array<{ name: string; restartPolicy?: string }>;
    };
    expect(spec.initContainers?.find((c) => c.name === 'webgw-agent')?.restartPolicy).toBe('Always');

    const web = await eventually(
      async () => {
        const r = await curlFromClient(`http://${FARMER_IP}/`, WEB);
        return r.status === 200 ? r : undefined;
      },
      30_000,
      'HTTP through the gateway',
    );
    expect(web.body).toMatch(new RegExp(`^hello ${WEB} from ${addressOf(CLIENT)} via app-`));

    const tls = await fromClient(
      'openssl',
      [
        's_client',
        '-connect',
        `${FARMER_IP}:443`,
        '-servername',
        DB,
        '-CAfile',
        caFile,
        '-verify_return_error',
        '-quiet',
      ],
      { input: '' },
    );
    expect(tls.stdout).toMatch(/^tls ok from app-/);

    const tcpPort = Number(
      await kubectlOk(['get', 'xsvc', 'shop', '-n', TENANT, '-o', 'jsonpath={.status.endpoints[0].tcp[0].port}']),
    );
    expect(tcpPort).toBeGreaterThanOrEqual(TCP_FROM);
    const echo = await eventually(
      async () => {
        const r = await tcpFromClient(FARMER_IP, tcpPort, 'echo through the tunnel');
        return r.stdout === 'echo through the tunnel' ? r : undefined;
      },
      30_000,
      'TCP through the gateway',
    );
    expect(echo.code).toBe(0);

    // Ready means reachable: the leading controller (a pod) read the farmer's session table over
    // mutual TLS and found both pods' agents there.
    const served = Date.now();
    await kubectlOk(['wait', '--for=condition=Ready', 'xsvc/shop', '-n', TENANT, '--timeout=60s']);
    figures.readyAfterServingMs = Date.now() - served;
    // Ready needs one agent; within an interval or two the status counts both pods' agents.
    type Endpoints = Array<{
      sessions: number;
      replicas: Array<{ sessions: number; reachable: boolean; rttMilliseconds?: number }>;
    }>;
    const endpoints = await eventually(
      async () => {
        const e = JSON.parse(
          await kubectlOk(['get', 'xsvc', 'shop', '-n', TENANT, '-o', 'jsonpath={.status.endpoints}']),
        ) as Endpoints;
        return e[0]?.sessions === 2 ? e : undefined;
      },
      45_000,
      'both agents in the status',
    );
    expect(endpoints[0]).toMatchObject({ sessions: 2, replicas: [{ sessions: 2, reachable: true }] });
    expect(
      await kubectlOk([
        'get',
        'xsvc',
        'shop',
        '-n',
        TENANT,
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Ready")].message}',
      ]),
    ).toBe("connected to edge (2 of 2 pods' agents)");
    figures.tunnelRttMs = endpoints[0]!.replicas[0]!.rttMilliseconds;
    const proxies = JSON.parse(await kubectlOk(['get', 'wgw', 'edge', '-o', 'jsonpath={.status.proxies}'])) as Array<{
      address: string;
      reachable: boolean;
      sessions: number;
    }>;
    expect(proxies).toEqual([expect.objectContaining({ address: FARMER_IP, reachable: true })]);

    // The same app, straight from the Internet and from the farmer: refused by the worker.
    const direct = await curlFromClient(`http://${app[0]!.ip}:8080/`);
    expect(direct.curl).toBe(7);
    const fromFarmer = await run('ip', [
      'netns',
      'exec',
      FARMER.name,
      'curl',
      '-sS',
      '-m',
      '5',
      `http://${app[0]!.ip}:8080/`,
    ]);
    expect(fromFarmer.stderr).toMatch(/Connection refused|Failed to connect/);
    expect((await curlFromClient(`http://${addressOf(WORKER)}:10250/`)).curl).toBe(7);
  });

  it("terminates TLS in the tenant's pods with a certificate through TLS-ALPN-01, validated through the farmer", async () => {
    // spec.acme for this test only: it would also order HTTP-01 certificates for the HTTP names
    // and redirect them, which the tests after this one do not expect.
    await kubectlOk([
      'patch',
      'wgw',
      'edge',
      '--type',
      'merge',
      '-p',
      JSON.stringify({ spec: { acme: { directoryUrl: pebble.directoryUrl, email: 'farmer@shop.test' } } }),
    ]);
    const started = Date.now();
    await kubectlOk([
      'patch',
      'xsvc',
      'shop',
      '-n',
      TENANT,
      '--type',
      'json',
      '-p',
      JSON.stringify([
        {
          op: 'add',
          path: '/spec/routes/-',
          value: {
            protocol: 'TLS',
            hostnames: [PAY],
            termination: 'Agent',
            backendProtocol: 'HTTP1',
            backend: { port: 8080 },
          },
        },
      ]),
    ]);
    try {
      type Certificate = { names: string[]; state: string; terminatedBy?: string; issuer?: string; message?: string };
      const pay = await eventually(
        async () => {
          const list = JSON.parse(
            (await kubectlOk([
              'get',
              'xsvc',
              'shop',
              '-n',
              TENANT,
              '-o',
              'jsonpath={.status.endpoints[0].certificates}',
            ])) || '[]',
          ) as Certificate[];
          const c = list.find((e) => e.names.includes(PAY));
          return c?.state === 'Ready' ? c : undefined;
        },
        300_000,
        "the agents' certificate",
      );
      figures.agentCertificateReadyMs = Date.now() - started;
      expect(pay).toMatchObject({ terminatedBy: 'Agent', issuer: expect.stringContaining('Pebble') });
      const rootFile = join(scratch, 'pebble-root.pem');
      writeFileSync(rootFile, await pebble.rootPem());
      // From the Internet, the chain verified against Pebble's root: the app answers in plaintext
      // behind the agent, which terminated TLS in the pod on the worker.
      const answer = await eventually(
        async () => {
          const r = await fromClient('curl', [
            '-sS',
            '-m',
            '10',
            '--cacert',
            rootFile,
            '--resolve',
            `${PAY}:443:${FARMER_IP}`,
            `https://${PAY}/`,
          ]);
          return r.code === 0 ? r : undefined;
          // Ready means issued and in the Secret; the agents load it at the kubelet's next sync of
          // the volume (seconds, or up to its sync period of about a minute and its jitter).
        },
        180_000,
        'HTTPS terminated by the agents',
      );
      figures.agentTlsServedMs = Date.now() - started;
      // backendProtocol: HTTP1: the agent gave the request this hop's X-Forwarded-For, the client's.
      expect(answer.stdout).toMatch(new RegExp(`^hello ${PAY} from ${addressOf(CLIENT)} via app-`));
      // No Secret of the farmer's namespace holds the key.
      const credential = JSON.parse(
        await kubectlOk(['get', 'secret', 'webgw-agent-shop', '-n', TENANT, '-o', 'jsonpath={.data}']),
      ) as Record<string, string>;
      const keyName = Object.keys(credential).find((k) => k.startsWith('tls-') && k.endsWith('.key'))!;
      const keyLine = Buffer.from(credential[keyName]!, 'base64').toString().split('\n')[1]!;
      const system = JSON.parse(await kubectlOk(['get', 'secret', '-n', SYSTEM, '-o', 'json'])) as {
        items: Array<{ data?: Record<string, string> }>;
      };
      expect(
        system.items
          .flatMap((i) => Object.values(i.data ?? {}))
          .filter((v) => Buffer.from(v, 'base64').toString().includes(keyLine)),
      ).toEqual([]);
    } finally {
      await kubectlOk([
        'patch',
        'xsvc',
        'shop',
        '-n',
        TENANT,
        '--type',
        'json',
        '-p',
        JSON.stringify([{ op: 'remove', path: '/spec/routes/3' }]),
      ]);
      await kubectlOk([
        'patch',
        'wgw',
        'edge',
        '--type',
        'json',
        '-p',
        JSON.stringify([{ op: 'remove', path: '/spec/acme' }]),
      ]);
      await eventually(
        async () => (await curlFromClient(`http://${FARMER_IP}/`, WEB)).status === 200,
        120_000,
        'plain HTTP again once spec.acme is gone',
      );
    }
  }, 480_000);

  it('Connector mode reaches a plain Service through CoreDNS and kube-proxy', async () => {
    await kubectlOk(
      ['apply', '-f', '-'],
      `
apiVersion: v1
kind: Namespace
metadata: {name: ${PLAIN}}
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: ${PLAIN}}
spec:
  selector: {app: app}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: webgw.io/v1alpha1
kind: ExposedService
metadata: {name: plain, namespace: ${PLAIN}}
spec:
  mode: Connector
  gateways: [{name: edge}]
  backend: {service: app, port: 80}
  routes: [{protocol: HTTP, hostnames: [${PLAIN_HOST}]}]
---${appDeployment(PLAIN, 1, { tls: false })}`,
    );
    await waitForClusterDns(plane().kubeconfig);
    await kubectlOk(['rollout', 'status', 'deployment/app', '-n', PLAIN, '--timeout=120s']);
    await eventually(
      async () =>
        (await kubectl(['rollout', 'status', 'deployment/webgw-connector-plain', '-n', PLAIN, '--timeout=5s'])).code ===
        0,
      120_000,
      'the connector Deployment',
    );
    const answer = await eventually(
      async () => {
        const r = await curlFromClient(`http://${FARMER_IP}/`, PLAIN_HOST);
        return r.status === 200 ? r : undefined;
      },
      60_000,
      'HTTP through the connector',
    );
    expect(answer.body).toMatch(new RegExp(`^hello ${PLAIN_HOST} from .* via app-`));
  });

  it(
    'keeps the tenant pods up and Ready for minutes: no eviction, no restart, the Deployment Available',
    async () => {
      const before = await pods(TENANT, 'app=app');
      const until = Date.now() + UPTIME_MS;
      let requests = 0;
      while (Date.now() < until) {
        await new Promise((r) => setTimeout(r, 10_000));
        const now = await pods(TENANT, 'app=app');
        expect(now.map((p) => p.name).sort()).toEqual(before.map((p) => p.name).sort());
        const unhealthy = now.filter((p) => !p.ready || p.restarts > 0);
        if (unhealthy.length > 0) {
          // Say why before failing: the restarted containers' last words and the namespace's events.
          for (const p of unhealthy) {
            const previous = await kubectl([
              'logs',
              '-n',
              TENANT,
              p.name,
              '--all-containers',
              '--previous',
              '--tail=40',
            ]);
            // An unready container that did not restart has no previous logs: its current ones say why.
            const current = await kubectl(['logs', '-n', TENANT, p.name, '--all-containers', '--tail=40']);
            console.log(
              `[uptime] ${p.name}: ${p.containers.join('; ')}\n${previous.stdout}${previous.stderr}\n` +
                `[uptime] current logs:\n${current.stdout}${current.stderr}`,
            );
          }
          console.log((await kubectl(['get', 'events', '-n', TENANT, '--sort-by=.lastTimestamp'])).stdout);
        }
        expect(unhealthy).toEqual([]);
        expect((await curlFromClient(`http://${FARMER_IP}/`, WEB)).status).toBe(200);
        requests++;
      }
      expect(
        await kubectlOk([
          'get',
          'deployment',
          'app',
          '-n',
          TENANT,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Available")].status}',
        ]),
      ).toBe('True');
      figures.uptime = { seconds: UPTIME_MS / 1000, checks: requests };
    },
    UPTIME_MS + 60_000,
  );

  it.each([
    ['the app', TENANT, 'deployment/app'],
    ['the gateway', SYSTEM, 'daemonset/webgw-gw-edge'],
  ])(
    'rolls out %s under constant load and counts the failed requests',
    async (what, namespace, workload) => {
      const load = loadFromClient(`http://${FARMER_IP}/`, WEB, LOAD_PER_SECOND);
      await new Promise((r) => setTimeout(r, 2000));
      const started = Date.now();
      await kubectlOk(['rollout', 'restart', workload, '-n', namespace]);
      await kubectlOk(['rollout', 'status', workload, '-n', namespace, '--timeout=180s']);
      const rolloutMs = Date.now() - started;
      // Requests keep flowing after the rollout (the new pods serve), then the count.
      await new Promise((r) => setTimeout(r, 5000));
      const result = await load.stop();
      figures[`rollout ${what}`] = { rolloutMs, ...result };
      expect(result.sent).toBeGreaterThan(LOAD_PER_SECOND * 5);
      expect(result.ok).toBeGreaterThan(0);
      expect(result.failed).toBeLessThanOrEqual(
        ALLOWED_ROLLOUT_FAILURES[what as keyof typeof ALLOWED_ROLLOUT_FAILURES],
      );
    },
    300_000,
  );

  it('stops the route as soon as the ExposedService is deleted', async () => {
    expect((await curlFromClient(`http://${FARMER_IP}/`, WEB)).status).toBe(200);
    const started = Date.now();
    await kubectlOk(['delete', 'xsvc', 'shop', '-n', TENANT, '--wait=false']);
    // Before, the kubelet carried the withdrawal to the proxy at its next sync of the pod: 82 s.
    await eventually(
      async () => (await curlFromClient(`http://${FARMER_IP}/`, WEB)).status !== 200,
      10_000,
      'the route to stop',
    );
    figures.routeStopsAfterDeleteMs = Date.now() - started;
    expect((await curlFromClient(`http://${FARMER_IP}/`, WEB)).status).toBe(404);
  });

  it('upgrades with helm while the connector keeps serving, then uninstalls and leaves nothing behind', async () => {
    await helmOk(
      [
        'upgrade',
        'webgw',
        CHART,
        '-n',
        SYSTEM,
        '--values',
        '-',
        '--set',
        'controller.logLevel=debug',
        '--wait',
        '--timeout',
        '180s',
      ],
      chartValues(),
    );
    expect((await pods(SYSTEM, 'app.kubernetes.io/component=controller')).every((p) => p.ready)).toBe(true);
    expect((await curlFromClient(`http://${FARMER_IP}/`, PLAIN_HOST)).status).toBe(200);

    // Tenants' objects first (helm does not own them), then the release.
    await kubectlOk(['delete', 'xsvc', '--all', '-n', PLAIN, '--wait=true']);
    await helmOk(['uninstall', 'webgw', '-n', SYSTEM, '--wait', '--timeout', '180s']);
    await eventually(
      async () => {
        const left = await kubectlOk([
          'get',
          'all,secrets,configmaps,leases,roles,rolebindings,serviceaccounts,poddisruptionbudgets',
          '-n',
          SYSTEM,
          '-o',
          'name',
        ]);
        return left.split('\n').filter((n) => n && !/kube-root-ca\.crt|serviceaccount\/default/.test(n)).length === 0;
      },
      120_000,
      'nothing left in webgw-system',
    );
    for (const kind of [
      'clusterroles',
      'clusterrolebindings',
      'mutatingwebhookconfigurations',
      'validatingwebhookconfigurations',
    ]) {
      expect(await kubectlOk(['get', kind, '-o', 'name'])).not.toMatch(/webgw/);
    }
    for (const ns of [TENANT, PLAIN]) {
      expect(
        await kubectlOk([
          'get',
          'deployments,secrets,configmaps',
          '-n',
          ns,
          '-o',
          'name',
          '-l',
          'app.kubernetes.io/name=webgw',
        ]),
      ).toBe('');
    }
    // Nothing listens on the farmer any more.
    expect((await curlFromClient(`http://${FARMER_IP}/`, WEB)).curl).toBe(7);
  });
});
