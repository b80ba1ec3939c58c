/**
 * The product end to end: a Gateway and an ExposedService applied to the real API server; the
 * controller issues credentials, the webhook renders the sidecar; then the gateway and the
 * agent run as local processes from exactly the pod specs and mounted contents the controller
 * and the webhook produced, and HTTP, TLS passthrough and TCP reach the private app.
 */
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { createCA, issueCertificate } from '../../src/pki/issue.ts';
import { get, tcpExchange } from '../helpers/http-client.ts';
import type { WebgwProcess } from '../helpers/processes.ts';
import {
  createWorkloadPod,
  startControllerWithWebhook,
  waitForAdmission,
  waitForCondition,
  type ControllerUnderTest,
} from './controller-under-test.ts';
import { eventually, fakeNode, freeWildcardPort, kubectlOk } from './helpers.ts';
import { agentContainer, runContainerLocally, runGatewayLocally, writeMounts } from './run-container.ts';

const NS = 'webgw-system';
const TENANT = 'e2e-shop';
const hour = { notAfter: new Date(Date.now() + 3600_000) };

async function listenLoopback(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

describe('end to end: applied objects → controller + webhook → real gateway and agent processes', () => {
  const root = mkdtempSync(join(tmpdir(), 'webgw-e2e-'));
  const servers: Server[] = [];
  const processes: WebgwProcess[] = [];
  let controller: ControllerUnderTest;
  const serviceCa = createCA('e2e service CA', hour);
  const ports = { http: 0, https: 0, tunnel: 0, tcpFrom: 0, app: 0, tlsApp: 0, echo: 0 };

  beforeAll(async () => {
    // The private workload: HTTP, TLS with its own certificate, and a TCP echo, loopback only.
    servers.push(
      createHttpServer((req, res) => res.end(`hello ${req.headers.host} from ${req.headers['x-forwarded-for']}`)),
    );
    const tlsCert = issueCertificate(
      serviceCa,
      { commonName: 'db.e2e.example', usage: 'server', hosts: ['db.e2e.example'] },
      hour,
    );
    servers.push(createTlsServer({ cert: tlsCert.certPem, key: tlsCert.keyPem }, (s) => s.end('tls ok')));
    servers.push(
      createTcpServer((s) => {
        s.on('error', () => {});
        s.on('data', (d) => s.write(d));
        s.on('end', () => s.end());
      }),
    );
    const [app, tlsApp, echo] = await Promise.all(servers.map(listenLoopback));
    Object.assign(ports, { app, tlsApp, echo });
    ports.http = await freeWildcardPort();
    ports.https = await freeWildcardPort();
    ports.tunnel = await freeWildcardPort();
    ports.tcpFrom = 29100;

    controller = await startControllerWithWebhook({
      namespace: NS,
      tenants: [TENANT],
      configurationName: 'webgw-e2e-injector',
    });
    await kubectlOk(
      ['apply', '-f', '-'],
      `
${fakeNode({ name: 'e2e-farmer', labels: { 'e2e-farmer': 'true' }, externalIp: '127.0.30.1' })}
---
apiVersion: webgw.io/v1alpha1
kind: Gateway
metadata: {name: e2e}
spec:
  placement: {nodeSelector: {e2e-farmer: "true"}}
  listeners: {http: {port: ${ports.http}}, https: {port: ${ports.https}}, tcp: {portRange: {from: ${ports.tcpFrom}, to: ${ports.tcpFrom + 9}}}, tunnel: {port: ${ports.tunnel}}}
  hostnamePolicy: {external: Allowed}   # the tests' names are not in real DNS
---
apiVersion: webgw.io/v1alpha1
kind: ExposedService
metadata: {name: shop, namespace: ${TENANT}}
spec:
  gateways: [{name: e2e}]
  selector: {app: shop}
  backend: {port: ${ports.app}}
  routes:
    - {protocol: HTTP, hostnames: [shop.e2e.example]}
    - {protocol: TLS, hostnames: [db.e2e.example], backend: {port: ${ports.tlsApp}}}
    - {protocol: TCP, backend: {port: ${ports.echo}}}
`,
    );
    await waitForCondition('xsvc', 'shop', TENANT, 'Programmed');
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await controller?.close();
    for (const s of servers) s.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves HTTP, TLS passthrough and TCP through processes run from the rendered pod specs', async () => {
    // The workload pod, as a tenant's Deployment would create it; the webhook adds the agent.
    const pod = await createWorkloadPod(TENANT, 'shop-0', { app: 'shop' });

    // The controller lists the agent's certificate among the gateway's admitted agents.
    await waitForAdmission('e2e', NS, TENANT, 'shop');
    const { process: gateway, template: gatewayTemplate } = await runGatewayLocally('e2e', NS, join(root, 'gateway'));
    processes.push(gateway);
    const agent = await runContainerLocally(agentContainer(pod), pod.volumes, TENANT, join(root, 'agent'));
    processes.push(agent);
    await agent.waitForLog((l) => l.msg === 'tunnel connected', 20_000);

    const res = await get(ports.http, 'shop.e2e.example');
    expect(res.status).toBe(200);
    expect(res.body).toBe('hello shop.e2e.example from 127.0.0.1');

    const tls = tlsConnect({
      host: '127.0.0.1',
      port: ports.https,
      servername: 'db.e2e.example',
      ca: serviceCa.certPem,
    });
    await once(tls, 'secureConnect');
    const tlsChunks: Buffer[] = [];
    for await (const c of tls) tlsChunks.push(c as Buffer);
    expect(Buffer.concat(tlsChunks).toString()).toBe('tls ok');

    const tcpPort = Number(
      await kubectlOk(['get', 'xsvc', 'shop', '-n', TENANT, '-o', 'jsonpath={.status.endpoints[0].tcp[0].port}']),
    );
    await eventually(async () => gateway.logs.some((l) => l.msg === 'TCP listener ready'), 10_000, 'the TCP listener');
    expect(await tcpExchange(tcpPort, 'echo through the operator')).toBe('echo through the operator');
    // Reachable, so Ready: what `kubectl wait --for=condition=Ready xsvc/shop` waits for.
    await waitForCondition('xsvc', 'shop', TENANT, 'Ready', 30_000);

    // Deleting the ExposedService withdraws its grants at the gateway: the controller drops its
    // certificate from the gateway's admitted agents; the proxy reloads that file (here we
    // project the ConfigMap again, as the kubelet does) and closes the agent's session.
    await kubectlOk(['delete', 'xsvc', 'shop', '-n', TENANT, '--wait=true']);
    await eventually(
      async () =>
        !/^[0-9A-F]+$/m.test(
          await kubectlOk([
            'get',
            'cm',
            'webgw-gw-e2e-config',
            '-n',
            NS,
            '-o',
            'jsonpath={.data.admitted-agents\\.txt}',
          ]),
        ),
      60_000,
      'the credential to leave the admitted list',
    );
    await writeMounts(gatewayTemplate.containers[0]!, gatewayTemplate.volumes, NS, join(root, 'gateway'));
    await gateway.waitForLog((l) => l.msg === 'agent credential withdrawn; closing its session', 20_000);
    await eventually(
      async () => (await get(ports.http, 'shop.e2e.example')).status === 404,
      10_000,
      'the route to be gone (404)',
    );
  });
});
