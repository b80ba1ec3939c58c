/**
 * The API server stopped for 60 s under load (issue 17): the data plane must not notice. The
 * gateway and the agent run as processes from the rendered pod specs, as in end-to-end.test.ts;
 * neither holds a cluster credential, so nothing they do waits on the API server. A constant
 * 50 requests a second on fresh connections runs before, during and after the outage, every one
 * counted; afterwards the controller is leading again and the ExposedService still Programmed.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { get } from '../helpers/http-client.ts';
import type { WebgwProcess } from '../helpers/processes.ts';
import {
  createWorkloadPod,
  startControllerWithWebhook,
  waitForAdmission,
  waitForCondition,
  type ControllerUnderTest,
} from './controller-under-test.ts';
import { eventually, fakeNode, freeWildcardPort, kubectlOk, plane } from './helpers.ts';
import { agentContainer, runContainerLocally, runGatewayLocally } from './run-container.ts';

const NS = 'webgw-system';
const TENANT = 'outage-shop';
const HOSTNAME = 'shop.outage.example';
const OUTAGE_MS = Number(process.env.WEBGW_OUTAGE_MS ?? 60_000);
const RPS = 50;

describe('the API server down for a minute under load', () => {
  const root = mkdtempSync(join(tmpdir(), 'webgw-outage-'));
  const processes: WebgwProcess[] = [];
  let app: Server;
  let controller: ControllerUnderTest;
  let httpPort = 0;

  beforeAll(async () => {
    app = createServer((_req, res) => res.end('shop'));
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    httpPort = await freeWildcardPort();
    const tunnelPort = await freeWildcardPort();
    controller = await startControllerWithWebhook({
      namespace: NS,
      tenants: [TENANT],
      configurationName: 'webgw-outage-injector',
    });
    await kubectlOk(
      ['apply', '-f', '-'],
      `
${fakeNode({ name: 'outage-farmer', labels: { 'outage-farmer': 'true' }, externalIp: '127.0.31.1' })}
---
apiVersion: webgw.io/v1alpha1
kind: Gateway
metadata: {name: outage}
spec:
  placement: {nodeSelector: {outage-farmer: "true"}}
  listeners: {http: {port: ${httpPort}}, tunnel: {port: ${tunnelPort}}}
  hostnamePolicy: {external: Allowed}
---
apiVersion: webgw.io/v1alpha1
kind: ExposedService
metadata: {name: shop, namespace: ${TENANT}}
spec:
  gateways: [{name: outage}]
  selector: {app: shop}
  backend: {port: ${(app.address() as AddressInfo).port}}
  routes: [{protocol: HTTP, hostnames: [${HOSTNAME}]}]
`,
    );
    await waitForCondition('xsvc', 'shop', TENANT, 'Programmed');
    const pod = await createWorkloadPod(TENANT, 'shop-0', { app: 'shop' });
    await waitForAdmission('outage', NS, TENANT, 'shop');
    processes.push((await runGatewayLocally('outage', NS, join(root, 'gateway'))).process);
    const agent = await runContainerLocally(agentContainer(pod), pod.volumes, TENANT, join(root, 'agent'));
    processes.push(agent);
    await agent.waitForLog((l) => l.msg === 'tunnel connected', 20_000);
    await eventually(async () => (await get(httpPort, HOSTNAME)).status === 200, 20_000, 'served');
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await controller?.close();
    app?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it(`serves every request while the API server is down for ${OUTAGE_MS / 1000} s, and the controller recovers`, async () => {
    const seen = new Map<string, number>();
    let sent = 0;
    const inFlight = new Set<Promise<void>>();
    const timer = setInterval(() => {
      for (let i = 0; i < RPS / 10; i++) {
        sent++;
        const p = get(httpPort, HOSTNAME)
          .then(
            (r) => (r.status === 200 && r.body === 'shop' ? 'ok' : `status ${r.status}`),
            (err: Error) => err.message,
          )
          .then((what) => {
            seen.set(what, (seen.get(what) ?? 0) + 1);
            inFlight.delete(p);
          });
        inFlight.add(p);
      }
    }, 100);
    await new Promise((r) => setTimeout(r, 2000));
    const stoppedAt = Date.now();
    await plane().stopApiserver();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    await plane().startApiserver();
    const downMs = Date.now() - stoppedAt;
    await new Promise((r) => setTimeout(r, 3000));
    clearInterval(timer);
    await Promise.all([...inFlight]);
    process.stdout.write(
      `[outage] API server down ${downMs} ms: ${sent} requests, ${JSON.stringify(Object.fromEntries(seen))}\n`,
    );
    expect([...seen.keys()]).toEqual(['ok']);
    expect(seen.get('ok')).toBe(sent);
    // The controller comes back on its own: leading again, and the status still right.
    await eventually(async () => controller.manager.isLeader, 60_000, 'the controller leading again');
    await waitForCondition('xsvc', 'shop', TENANT, 'Programmed', 60_000);
  });
});
