/**
 * One ExposedService on two Gateways on two farmer nodes, run end to end from what the
 * controller and the webhook rendered: both gateways serve, and when one gateway process dies
 * the other keeps serving every request (no outage); restarted, it serves again.
 */
import { once } from 'node:events';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { get, tcpExchange } from '../helpers/http-client.ts';
import type { WebgwProcess } from '../helpers/processes.ts';
import {
  SESSION_PROBE_INTERVAL_MS,
  conditionOf,
  createWorkloadPod,
  startControllerWithWebhook,
  waitForAdmission,
  waitForCondition,
  waitForConditionMatching,
  type ControllerUnderTest,
} from './controller-under-test.ts';
import { eventually, fakeNode, freeWildcardPort, kubectlOk } from './helpers.ts';
import { agentContainer, runContainerLocally, runGatewayLocally } from './run-container.ts';

const NS = 'webgw-system';
const TENANT = 'ha-shop';
const GATEWAYS = ['ha-a', 'ha-b'] as const;

interface GatewayPorts {
  http: number;
  tunnel: number;
  tcpFrom: number;
}

describe('end to end: one service on two gateways', () => {
  const root = mkdtempSync(join(tmpdir(), 'webgw-ha-'));
  const servers: Array<Server | ReturnType<typeof createTcpServer>> = [];
  const processes: WebgwProcess[] = [];
  const ports = new Map<string, GatewayPorts>();
  const gatewayProcesses = new Map<string, WebgwProcess>();
  let controller: ControllerUnderTest;
  let appPort = 0;
  let echoPort = 0;
  const readiness: Array<[string, number]> = [];

  beforeAll(async () => {
    const app = createHttpServer((req, res) => res.end(`hello ${req.headers.host}`));
    const echo = createTcpServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      s.on('data', (d) => s.write(d));
      s.on('end', () => s.end());
    });
    servers.push(app, echo);
    for (const s of servers) s.listen(0, '127.0.0.1');
    await Promise.all(servers.map((s) => once(s, 'listening')));
    appPort = (app.address() as AddressInfo).port;
    echoPort = (echo.address() as AddressInfo).port;
    let tcpFrom = 29200;
    for (const gw of GATEWAYS) {
      ports.set(gw, { http: await freeWildcardPort(), tunnel: await freeWildcardPort(), tcpFrom });
      tcpFrom += 10;
    }

    controller = await startControllerWithWebhook({
      namespace: NS,
      tenants: [TENANT],
      configurationName: 'webgw-ha-injector',
    });
    const manifests = GATEWAYS.map((gw, i) => {
      const p = ports.get(gw)!;
      return `${fakeNode({ name: `${gw}-farmer`, labels: { 'ha-farmer': gw }, externalIp: `127.0.32.${i + 1}` })}
---
apiVersion: webgw.io/v1alpha1
kind: Gateway
metadata: {name: ${gw}}
spec:
  placement: {nodeSelector: {ha-farmer: ${gw}}}
  listeners: {http: {port: ${p.http}}, tcp: {portRange: {from: ${p.tcpFrom}, to: ${p.tcpFrom + 9}}}, tunnel: {port: ${p.tunnel}}}
  hostnamePolicy: {external: Allowed}   # the tests' names are not in real DNS
`;
    });
    await kubectlOk(
      ['apply', '-f', '-'],
      `${manifests.join('---\n')}---
apiVersion: webgw.io/v1alpha1
kind: ExposedService
metadata: {name: web, namespace: ${TENANT}}
spec:
  gateways: [{name: ha-a}, {name: ha-b}]
  selector: {app: web}
  backend: {port: ${appPort}}
  routes:
    - {protocol: HTTP, hostnames: [web.ha.example]}
    - {protocol: TCP, backend: {port: ${echoPort}}}
`,
    );
    // Credentials are written; no agent runs yet.
    await waitForCondition('xsvc', 'web', TENANT, 'Programmed');
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await controller?.close();
    for (const s of servers) s.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves through both gateways and survives the loss of one', async () => {
    const pod = await createWorkloadPod(TENANT, 'web-0', { app: 'web' });
    for (const gw of GATEWAYS) {
      await waitForAdmission(gw, NS, TENANT, 'web');
      const { process } = await runGatewayLocally(gw, NS, join(root, gw));
      processes.push(process);
      gatewayProcesses.set(gw, process);
    }
    // Gateways run, the agent does not: not Ready, and the status says what is missing.
    const started = Date.now();
    // (Until both processes listen, a replica may also read as unreachable.)
    const notReady = await waitForConditionMatching(
      'xsvc',
      'web',
      TENANT,
      'Ready',
      (c) => c.status === 'False' && !/unreachable|not read yet/.test(c.message),
    );
    expect(notReady).toMatchObject({
      reason: 'NoAgentConnected',
      message: "0 of 1 pods' agents connected to ha-a; 0 of 1 pods' agents connected to ha-b",
    });
    readiness.push(['no agent', Date.now() - started]);

    const agent = await runContainerLocally(agentContainer(pod), pod.volumes, TENANT, join(root, 'agent'));
    processes.push(agent);
    await eventually(
      async () => agent.logs.filter((l) => l.msg === 'tunnel connected').length >= 2,
      20_000,
      'the agent connected to both gateways',
    );
    const connectedAt = Date.now();
    const ready = await waitForConditionMatching(
      'xsvc',
      'web',
      TENANT,
      'Ready',
      (c) => c.status === 'True',
      3 * SESSION_PROBE_INTERVAL_MS + 5000,
    );
    readiness.push(['agent connected → Ready', Date.now() - connectedAt]);
    expect(ready).toMatchObject({
      reason: 'AgentsConnected',
      message: "connected to ha-a (1 of 1 pods' agents), ha-b (1 of 1 pods' agents)",
    });
    expect(await kubectlOk(['get', 'xsvc', 'web', '-n', TENANT, '-o', 'jsonpath={.status.connectedGateways}'])).toBe(
      '2/2',
    );
    const withSessions = JSON.parse(
      await kubectlOk(['get', 'xsvc', 'web', '-n', TENANT, '-o', 'jsonpath={.status.endpoints}']),
    ) as Array<{
      gateway: string;
      sessions: number;
      replicas: Array<{ name: string; sessions: number; since: string; rttMilliseconds?: number; reachable: boolean }>;
    }>;
    for (const e of withSessions) {
      expect(e.sessions).toBe(1);
      expect(e.replicas).toEqual([
        expect.objectContaining({
          name: expect.stringMatching(new RegExp(`^webgw-gw-${e.gateway}-`)),
          sessions: 1,
          reachable: true,
        }),
      ]);
    }
    const gatewayStatus = JSON.parse(await kubectlOk(['get', 'gateway', 'ha-a', '-o', 'jsonpath={.status}'])) as {
      sessions: number;
      attachedServices: number;
      proxies: Array<{ reachable: boolean; sessions: number; routes: number }>;
    };
    expect(gatewayStatus).toMatchObject({
      sessions: 1,
      attachedServices: 1,
      proxies: [{ reachable: true, sessions: 1, routes: 2 }],
    });

    const status = JSON.parse(
      await kubectlOk(['get', 'xsvc', 'web', '-n', TENANT, '-o', 'jsonpath={.status.endpoints}']),
    ) as Array<{ gateway: string; urls?: string[]; tcp?: Array<{ port: number }> }>;
    expect(status.map((e) => e.gateway).sort()).toEqual([...GATEWAYS]);
    for (const gw of GATEWAYS) {
      const res = await get(ports.get(gw)!.http, 'web.ha.example');
      expect(res.status).toBe(200);
      expect(res.body).toBe('hello web.ha.example');
      const tcpPort = status.find((e) => e.gateway === gw)!.tcp![0]!.port;
      await eventually(
        async () => (await tcpExchange(tcpPort, `via ${gw}`)) === `via ${gw}`,
        10_000,
        `TCP through ${gw}`,
      );
    }

    // Gateway A dies (SIGKILL, as a node loss would) while clients keep using gateway B.
    const survivor = ports.get('ha-b')!.http;
    let served = 0;
    const failures: string[] = [];
    let stop = false;
    const load = (async () => {
      while (!stop) {
        const res = await get(survivor, 'web.ha.example').catch((err: Error) => ({ status: 0, body: err.message }));
        if (res.status === 200) served++;
        else failures.push(`${res.status} ${res.body}`);
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const victim = gatewayProcesses.get('ha-a')!;
    victim.proc.kill('SIGKILL');
    await once(victim.proc, 'exit');
    await agent.waitForLog((l) => l.msg === 'tunnel closed', 10_000);
    const killedAt = Date.now();
    // The lost replica's entry drops to zero and the status names it.
    const lost = await waitForConditionMatching(
      'xsvc',
      'web',
      TENANT,
      'Ready',
      (c) => c.status === 'False' && /unreachable/.test(c.message),
      3 * SESSION_PROBE_INTERVAL_MS + 5000,
    );
    readiness.push(['gateway killed → Ready=False', Date.now() - killedAt]);
    expect(lost.message).toMatch(/^ha-a: replica webgw-gw-ha-a-\S+ unreachable$/);
    const afterLoss = JSON.parse(
      await kubectlOk(['get', 'xsvc', 'web', '-n', TENANT, '-o', 'jsonpath={.status.endpoints}']),
    ) as Array<{ gateway: string; sessions: number; replicas: Array<{ sessions: number; reachable: boolean }> }>;
    expect(afterLoss.find((e) => e.gateway === 'ha-a')).toMatchObject({
      sessions: 0,
      replicas: [{ sessions: 0, reachable: false }],
    });
    expect(afterLoss.find((e) => e.gateway === 'ha-b')).toMatchObject({ sessions: 1 });
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await load;
    expect(failures).toEqual([]);
    expect(served).toBeGreaterThan(20);
    const tcpB = status.find((e) => e.gateway === 'ha-b')!.tcp![0]!.port;
    expect(await tcpExchange(tcpB, 'still here')).toBe('still here');

    // Back on its node, gateway A serves again: the agent redials it.
    const connectedBefore = agent.logs.filter((l) => l.msg === 'tunnel connected').length;
    const { process: restarted } = await runGatewayLocally('ha-a', NS, join(root, 'ha-a'));
    processes.push(restarted);
    await eventually(
      async () => agent.logs.filter((l) => l.msg === 'tunnel connected').length > connectedBefore,
      30_000,
      'the agent back on gateway A',
    );
    await eventually(
      async () => (await get(ports.get('ha-a')!.http, 'web.ha.example')).status === 200,
      10_000,
      'gateway A serving again',
    );
    const backAt = Date.now();
    await waitForConditionMatching(
      'xsvc',
      'web',
      TENANT,
      'Ready',
      (c) => c.status === 'True',
      3 * SESSION_PROBE_INTERVAL_MS + 5000,
    );
    readiness.push(['gateway back → Ready', Date.now() - backAt]);
  });

  it('writes nothing for 30 s while the data plane is steady (reading every replica every second)', async () => {
    await new Promise((r) => setTimeout(r, 3 * SESSION_PROBE_INTERVAL_MS));
    const before = { ...controller.manager.client.writes };
    const ready = await conditionOf('xsvc', 'web', TENANT, 'Ready');
    await new Promise((r) => setTimeout(r, 30_000));
    expect(controller.manager.client.writes).toEqual(before);
    expect(await conditionOf('xsvc', 'web', TENANT, 'Ready')).toEqual(ready);
    process.stdout.write(`status truth timings (ms): ${JSON.stringify(readiness)}\n`);
  }, 60_000);
});
