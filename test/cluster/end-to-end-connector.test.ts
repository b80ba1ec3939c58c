/**
 * Connector mode end to end: a tenant's Service (two pods kwok runs) exposed by an ExposedService in Connector mode. The two agent
 * replicas of the connector Deployment run as local processes from its pod template; the
 * Service's DNS name and ClusterIP forwarding are emulated on loopback (service-network.ts);
 * requests to the gateway reach both pods through the Service.
 */
import { once } from 'node:events';
import { createServer as createHttpServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { get } from '../helpers/http-client.ts';
import type { WebgwProcess } from '../helpers/processes.ts';
import {
  conditionOf,
  startControllerWithWebhook,
  waitForAdmission,
  waitForCondition,
  waitForConditionMatching,
  type ControllerUnderTest,
} from './controller-under-test.ts';
import { eventually, fakeNode, freeWildcardPort, kubectl, kubectlOk } from './helpers.ts';
import { agentContainer, runContainerLocally, runGatewayLocally, type PodSpec } from './run-container.ts';
import { emulateService, type EmulatedService } from './service-network.ts';

const NS = 'webgw-system';
const TENANT = 'legacy-shop';
const BACKEND_PODS = ['legacy-0', 'legacy-1'];

describe('end to end: Connector mode serves a Service', () => {
  const root = mkdtempSync(join(tmpdir(), 'webgw-connector-'));
  const servers: Server[] = [];
  const processes: WebgwProcess[] = [];
  let controller: ControllerUnderTest;
  let service: EmulatedService | undefined;
  const ports = { http: 0, tunnel: 0, service: 0, target: 0 };

  beforeAll(async () => {
    for (const key of Object.keys(ports) as Array<keyof typeof ports>) ports[key] = await freeWildcardPort();
    controller = await startControllerWithWebhook({
      namespace: NS,
      tenants: [],
      configurationName: 'webgw-connector-injector',
    });
    await kubectl(['create', 'namespace', TENANT]);
    await kubectlOk(
      ['apply', '-f', '-'],
      `${fakeNode({ name: 'conn-farmer', labels: { 'conn-farmer': 'true' }, externalIp: '127.0.33.1' })}
---
${fakeNode({ name: 'conn-worker' })}
---
apiVersion: webgw.io/v1alpha1
kind: Gateway
metadata: {name: conn}
spec:
  placement: {nodeSelector: {conn-farmer: "true"}}
  listeners: {http: {port: ${ports.http}}, tunnel: {port: ${ports.tunnel}}}
  hostnamePolicy: {external: Allowed}   # the tests' names are not in real DNS
---
apiVersion: v1
kind: Service
metadata: {name: legacy-svc, namespace: ${TENANT}}
spec:
  selector: {app: legacy}
  ports: [{name: http, port: ${ports.service}, targetPort: ${ports.target}}]
---
apiVersion: webgw.io/v1alpha1
kind: ExposedService
metadata: {name: legacy, namespace: ${TENANT}}
spec:
  gateways: [{name: conn}]
  mode: Connector
  backend: {service: legacy-svc, port: ${ports.service}}
  routes: [{protocol: HTTP, hostnames: [legacy.conn.example]}]
`,
    );
    // The pods need the namespace's default ServiceAccount, which appears shortly after it.
    const pods = BACKEND_PODS.map(
      (name) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${TENANT}, labels: {app: legacy}}
spec:
  nodeName: conn-worker
  containers: [{name: app, image: registry.invalid/legacy:1, ports: [{containerPort: ${ports.target}}]}]
`,
    ).join('---\n');
    await eventually(async () => (await kubectl(['apply', '-f', '-'], pods)).code === 0, 30_000, 'the backend pods');
    // The workload: each pod's app listens on its pod IP (loopback, from kwok) and names itself.
    for (const name of BACKEND_PODS) {
      const ip = await eventually(
        async () =>
          (await kubectlOk(['get', 'pod', name, '-n', TENANT, '-o', 'jsonpath={.status.podIP}'])).trim() || undefined,
        60_000,
        `${name} running`,
      );
      const server = createHttpServer((_req, res) => setTimeout(() => res.end(`legacy from ${name}`), 20));
      server.listen(ports.target, ip);
      await once(server, 'listening');
      servers.push(server);
    }
    service = await emulateService(TENANT, 'legacy-svc', '127.0.41.1');
    await waitForCondition('xsvc', 'legacy', TENANT, 'Programmed');
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await service?.close();
    await controller?.close();
    for (const s of servers) s.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('runs the connector replicas from the Deployment template and reaches both pods through the Service', async () => {
    await kubectlOk([
      'wait',
      '--for=condition=Available',
      'deploy/webgw-connector-legacy',
      '-n',
      TENANT,
      '--timeout=90s',
    ]);
    const template = JSON.parse(
      await kubectlOk([
        'get',
        'deploy',
        'webgw-connector-legacy',
        '-n',
        TENANT,
        '-o',
        'jsonpath={.spec.template.spec}',
      ]),
    ) as PodSpec & { automountServiceAccountToken: boolean };
    expect(template.automountServiceAccountToken).toBe(false);
    const replicas = Number(
      await kubectlOk(['get', 'deploy', 'webgw-connector-legacy', '-n', TENANT, '-o', 'jsonpath={.spec.replicas}']),
    );
    expect(replicas).toBe(2);

    await waitForAdmission('conn', NS, TENANT, 'legacy');
    const { process: gateway } = await runGatewayLocally('conn', NS, join(root, 'gateway'));
    processes.push(gateway);
    const agents: WebgwProcess[] = [];
    for (let i = 0; i < replicas; i++) {
      const agent = await runContainerLocally(
        agentContainer(template),
        template.volumes,
        TENANT,
        join(root, `connector-${i}`),
        service,
      );
      processes.push(agent);
      agents.push(agent);
      await agent.waitForLog((l) => l.msg === 'tunnel connected', 20_000);
    }

    // Concurrent requests, so the gateway opens several tunnel streams (each one connection
    // from an agent to the Service, balanced over its endpoints).
    const responses = await Promise.all(Array.from({ length: 16 }, () => get(ports.http, 'legacy.conn.example')));
    expect(responses.map((r) => r.status)).toEqual(responses.map(() => 200));
    const from = new Set(responses.map((r) => r.body));
    expect([...from].sort()).toEqual(BACKEND_PODS.map((p) => `legacy from ${p}`));
    expect([...service!.forwarded.keys()].length).toBe(BACKEND_PODS.length);
    // Both agents are connected; the status follows within one probe interval (Ready may have
    // turned True a round earlier, with the first agent only).
    const ready = await waitForConditionMatching(
      'xsvc',
      'legacy',
      TENANT,
      'Ready',
      (c) => c.status === 'True' && c.message.includes('2 of 2'),
    );
    expect(ready.message).toBe("connected to conn (2 of 2 pods' agents)");

    // Either replica alone serves: stop one, the other carries on.
    await agents[0]!.stop();
    await eventually(
      async () => (await get(ports.http, 'legacy.conn.example')).status === 200,
      10_000,
      'service with one connector replica',
    );
    const after = await Promise.all(Array.from({ length: 8 }, () => get(ports.http, 'legacy.conn.example')));
    expect(after.every((r) => r.status === 200)).toBe(true);
    // One connector left: still Ready, and the status counts one session.
    await eventually(
      async () =>
        (await kubectlOk(['get', 'xsvc', 'legacy', '-n', TENANT, '-o', 'jsonpath={.status.endpoints[0].sessions}'])) ===
        '1',
      15_000,
      'one session in status',
    );
    expect(await conditionOf('xsvc', 'legacy', TENANT, 'Ready')).toMatchObject({
      status: 'True',
      message: "connected to conn (1 of 2 pods' agents)",
    });
  });
});
