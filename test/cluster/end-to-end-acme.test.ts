/**
 * HTTPS for a tenant's own hostname through ACME HTTP-01, end to end against a real ACME server
 * (issue 16, mode 2), and TLS terminated at the agent with a certificate through TLS-ALPN-01
 * (mode 3: Pebble's validation handshake passes through the gateway to the agent, which serves
 * the challenge the controller wrote into the tenant's credential Secret): Pebble validates by connecting to the gateway's HTTP listener (its DNS,
 * pebble-challtestsrv, maps every name to loopback), where the proxy answers with what the
 * controller handed it over mutual TLS. The gateway and the agent run from the rendered pod
 * specs; their volumes are written as the kubelet writes them, once a second. Clients verify
 * the served chain against Pebble's root. Shown: issuance, status and redirect; a renewal of a
 * short-lived certificate under constant load with no failed request; the ACME server down
 * (the certificate kept, the condition says why, retried with backoff); names the tenant may
 * not claim never ordered.
 */
import { execFile } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { get } from '../helpers/http-client.ts';
import type { WebgwProcess } from '../helpers/processes.ts';
import {
  conditionOf,
  createWorkloadPod,
  startControllerWithWebhook,
  waitForAdmission,
  waitForCondition,
  waitForConditionMatching,
  type ControllerUnderTest,
} from './controller-under-test.ts';
import { eventually, fakeNode, freeWildcardPort, kubectl, kubectlOk } from './helpers.ts';
import { startPebble, type Pebble } from './pebble.ts';
import { agentContainer, runContainerLocally, runGatewayLocally, writeMounts, type PodSpec } from './run-container.ts';

const NS = 'webgw-system';
const TENANT = 'e2e-acme';
const OTHER = 'e2e-acme-other';
const GATEWAY = 'e2e-acme';
const OWN = 'own.acme-tenant.example';
const SECOND = 'second.acme-tenant.example';
const RAW = 'raw.acme-tenant.example';
/** A TLS route the agent terminates (termination: Agent), its certificate through TLS-ALPN-01. */
const END = 'end.acme-tenant.example';
/** Pebble's certificates live this long: renewed at two thirds, 40 s in. */
const VALIDITY_S = 60;

interface Answer {
  status: number;
  body: string;
  serial: string;
  notAfter: string;
}

describe('end to end: ACME HTTP-01 and TLS-ALPN-01 certificates for own hostnames, against Pebble', () => {
  const root = mkdtempSync(join(tmpdir(), 'webgw-e2e-acme-'));
  const processes: WebgwProcess[] = [];
  const ports = { http: 0, https: 0, tunnel: 0, app: 0, raw: 0 };
  const raw = createTcpServer((sock) => {
    sock.on('error', () => {});
    sock.on('data', (d) => sock.write(`plain:${d.toString()}`));
  });
  let pebble: Pebble;
  let pebbleRoot = '';
  let controller: ControllerUnderTest;
  let gatewaySpec: PodSpec;
  let kubelet: NodeJS.Timeout | undefined;
  const app = createHttpServer((req, res) =>
    res.end(`hello ${req.headers.host} over ${req.headers['x-forwarded-proto']}`),
  );

  function httpsGet(name: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: ports.https,
          path: '/',
          servername: name,
          ca: pebbleRoot,
          headers: { host: name },
          agent: false,
          timeout: 5000,
        },
        (res: IncomingMessage) => {
          const peer = (res.socket as TLSSocket).getPeerCertificate();
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => {
            body += d;
          });
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body,
              serial: peer.serialNumber ?? '',
              notAfter: peer.valid_to ?? '',
            }),
          );
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  }

  /** A TLS connection verified against Pebble's root: what the backend answered, and the serial. */
  function relayedOver(name: string): Promise<{ data: string; serial: string } | undefined> {
    return new Promise((resolve) => {
      const sock = tlsConnect({ host: '127.0.0.1', port: ports.https, servername: name, ca: pebbleRoot });
      const timer = setTimeout(() => {
        sock.destroy();
        resolve(undefined);
      }, 5000);
      sock.once('secureConnect', () => sock.write('ping'));
      sock.once('data', (d: Buffer) => {
        clearTimeout(timer);
        resolve({ data: d.toString(), serial: sock.getPeerCertificate().serialNumber ?? '' });
        sock.destroy();
      });
      sock.once('error', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
    });
  }

  const endpointCertificates = async (): Promise<
    Array<{ names: string[]; state: string; source: string; message?: string }>
  > =>
    JSON.parse(
      (await kubectlOk(['get', 'xsvc', 'web', '-n', TENANT, '-o', 'jsonpath={.status.endpoints[0].certificates}'])) ||
        '[]',
    );

  beforeAll(async () => {
    app.listen(0, '127.0.0.1');
    raw.listen(0, '127.0.0.1');
    await Promise.all([once(app, 'listening'), once(raw, 'listening')]);
    Object.assign(ports, {
      app: (app.address() as AddressInfo).port,
      raw: (raw.address() as AddressInfo).port,
      http: await freeWildcardPort(),
      https: await freeWildcardPort(),
      tunnel: await freeWildcardPort(),
    });
    pebble = await startPebble({ dir: root, httpPort: ports.http, tlsPort: ports.https, validitySeconds: VALIDITY_S });
    pebbleRoot = await pebble.rootPem();
    controller = await startControllerWithWebhook({
      namespace: NS,
      tenants: [TENANT, OTHER],
      configurationName: 'webgw-e2e-acme-injector',
      manager: { acmeCaPem: pebble.caPem, acmeBackoff: { initialMs: 1000, maxMs: 4000 } },
    });
    await kubectlOk(
      ['apply', '-f', '-'],
      `${fakeNode({ name: 'e2e-acme-farmer', labels: { 'e2e-acme-farmer': 'true' }, externalIp: '127.0.32.1' })}
---
apiVersion: webgw.io/v1alpha1
kind: Gateway
metadata: {name: ${GATEWAY}}
spec:
  domain: edge.acme.example
  acme: {directoryUrl: "${pebble.directoryUrl}", email: farmer@acme.example}
  placement: {nodeSelector: {e2e-acme-farmer: "true"}}
  listeners: {http: {port: ${ports.http}}, https: {port: ${ports.https}}, tunnel: {port: ${ports.tunnel}}}
  hostnamePolicy: {external: Allowed, wildcards: Forbidden}
---
apiVersion: webgw.io/v1alpha1
kind: ExposedService
metadata: {name: web, namespace: ${TENANT}}
spec:
  gateways: [{name: ${GATEWAY}}]
  selector: {app: web}
  backend: {port: ${ports.app}}
  routes:
    - {protocol: HTTP, hostnames: [${OWN}]}
    - {protocol: HTTP, hostnames: ["*.wild.acme-tenant.example"]}   # refused: wildcards are Forbidden
    - {protocol: TLS, hostnames: [${RAW}], termination: Terminate, backend: {port: ${ports.raw}}}
    - {protocol: TLS, hostnames: [${END}], termination: Agent, backend: {port: ${ports.raw}}}
`,
    );
    await waitForCondition('xsvc', 'web', TENANT, 'Programmed');
    // Another tenant claims the same name later: HostnameConflict, and nothing ordered for it.
    await kubectlOk(
      ['apply', '-f', '-'],
      `apiVersion: webgw.io/v1alpha1
kind: ExposedService
metadata: {name: thief, namespace: ${OTHER}}
spec:
  gateways: [{name: ${GATEWAY}}]
  selector: {app: thief}
  backend: {port: 1}
  routes: [{protocol: HTTP, hostnames: [${OWN}, only-thief.acme-other.example]}]
`,
    );
    const pod = await createWorkloadPod(TENANT, 'web-0', { app: 'web' });
    await waitForAdmission(GATEWAY, NS, TENANT, 'web');
    const gateway = await runGatewayLocally(GATEWAY, NS, join(root, 'gateway'));
    processes.push(gateway.process);
    gatewaySpec = gateway.template;
    // The kubelet's volume sync, once a second (the controller also pokes the pods): the proxy's
    // certificates, and the agent's credential, reissued with https grants once a name has one.
    let writing = false;
    kubelet = setInterval(() => {
      if (writing) return;
      writing = true;
      Promise.all([
        writeMounts(gatewaySpec.containers[0]!, gatewaySpec.volumes, NS, join(root, 'gateway')),
        writeMounts(agentContainer(pod), pod.volumes, TENANT, join(root, 'agent')),
      ])
        .catch(() => {})
        .finally(() => {
          writing = false;
        });
    }, 1000);
    const agent = await runContainerLocally(agentContainer(pod), pod.volumes, TENANT, join(root, 'agent'));
    processes.push(agent);
    await agent.waitForLog((l) => l.msg === 'tunnel connected', 20_000);
  });

  afterAll(async () => {
    if (kubelet) clearInterval(kubelet);
    await Promise.all(processes.map((p) => p.stop()));
    await kubectl(['delete', 'xsvc', 'web', '-n', TENANT, '--wait=false']);
    await kubectl(['delete', 'xsvc', 'thief', '-n', OTHER, '--wait=false']);
    await kubectl(['delete', 'wgw', GATEWAY, '--wait=false']);
    await controller?.close();
    await pebble?.close();
    app.close();
    raw.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('obtains a certificate from Pebble, serves the name over HTTPS with a chain to its root, and redirects plain HTTP', async () => {
    await waitForConditionMatching('xsvc', 'web', TENANT, 'CertificateReady', (c) => c.status === 'True', 90_000);
    const certificates = await endpointCertificates();
    expect(certificates).toEqual([
      expect.objectContaining({
        names: [OWN],
        state: 'Ready',
        source: 'ACME',
        issuer: expect.stringContaining('Pebble'),
      }),
      expect.objectContaining({ names: [RAW], state: 'Ready', source: 'ACME' }),
      expect.objectContaining({
        names: [END],
        state: 'Ready',
        source: 'ACME',
        terminatedBy: 'Agent',
        issuer: expect.stringContaining('Pebble'),
      }),
    ]);
    const acme = JSON.parse(await kubectlOk(['get', 'wgw', GATEWAY, '-o', 'jsonpath={.status.acme}'])) as {
      certificates: Array<{ hostname: string; renewAt: string; notAfter: string }>;
    };
    // The other tenant's own name is ordered for it; the name it lost is not (below).
    await eventually(
      async () => {
        const status = JSON.parse(
          await kubectlOk(['get', 'wgw', GATEWAY, '-o', 'jsonpath={.status.acme}']),
        ) as typeof acme;
        return status.certificates?.length === 3 ? status : undefined;
      },
      60_000,
      'both certificates',
    );
    expect(acme.certificates.map((c) => c.hostname)).toContain(OWN);
    const urls = await eventually(
      async () => {
        const list = JSON.parse(
          (await kubectlOk(['get', 'xsvc', 'web', '-n', TENANT, '-o', 'jsonpath={.status.endpoints[0].urls}'])) || '[]',
        ) as string[];
        return list.includes(`https://${OWN}:${ports.https}`) ? list : undefined;
      },
      30_000,
      'the https URL',
    );
    expect(urls).not.toContain(`http://${OWN}:${ports.http}`);

    const answer = await eventually(
      async () => httpsGet(OWN).catch(() => undefined),
      30_000,
      'HTTPS served with the ACME certificate',
    );
    expect(answer).toMatchObject({ status: 200, body: `hello ${OWN} over https` });
    const redirect = await get(ports.http, OWN, '/x');
    expect(redirect.status).toBe(308);
    expect(redirect.headers.location).toBe(`https://${OWN}:${ports.https}/x`);

    // A TLS route terminated at the gateway with its own ACME certificate: the plaintext relayed.
    const relayed = await eventually(
      async () =>
        new Promise<string | undefined>((resolve) => {
          const sock = tlsConnect({ host: '127.0.0.1', port: ports.https, servername: RAW, ca: pebbleRoot });
          sock.once('secureConnect', () => sock.write('ping'));
          sock.once('data', (d: Buffer) => {
            resolve(d.toString());
            sock.destroy();
          });
          sock.once('error', () => resolve(undefined));
        }),
      30_000,
      'the terminated TLS route',
    );
    expect(relayed).toBe('plain:ping');

    // openssl verifies the whole chain the gateway serves against Pebble's root.
    const rootFile = join(root, 'pebble-root.pem');
    writeFileSync(rootFile, pebbleRoot);
    const { stdout } = await promisify(execFile)(
      'sh',
      [
        '-c',
        `echo | openssl s_client -connect 127.0.0.1:${ports.https} -servername ${OWN} -verify_hostname ${OWN} -CAfile ${rootFile} -verify_return_error 2>&1`,
      ],
      { timeout: 10_000 },
    );
    expect(stdout).toContain('Verify return code: 0 (ok)');
  });

  it('terminates a TLS route at the agent with a certificate obtained through TLS-ALPN-01: the gateway holds neither key nor plaintext', async () => {
    await waitForConditionMatching('xsvc', 'web', TENANT, 'CertificateReady', (c) => c.status === 'True', 90_000);
    const answer = await eventually(async () => relayedOver(END), 30_000, 'the agent-terminated route');
    expect(answer.data).toBe('plain:ping');
    const urls = JSON.parse(
      await kubectlOk(['get', 'xsvc', 'web', '-n', TENANT, '-o', 'jsonpath={.status.endpoints[0].urls}']),
    ) as string[];
    expect(urls).toContain(`https://${END}:${ports.https}`);
    // The key is in the tenant's credential Secret only: not in the Gateway's ACME Secrets, not in
    // what the gateway's pod mounts, not in the Gateway's status.
    const credential = JSON.parse(
      await kubectlOk(['get', 'secret', `webgw-agent-web`, '-n', TENANT, '-o', 'jsonpath={.data}']),
    ) as Record<string, string>;
    const keyName = Object.keys(credential).find((k) => k.startsWith('tls-') && k.endsWith('.key'));
    expect(keyName).toBeDefined();
    const keyPem = Buffer.from(credential[keyName!]!, 'base64').toString();
    const keyLine = keyPem.split('\n')[1]!;
    const gatewaySecrets = JSON.parse(await kubectlOk(['get', 'secret', '-n', NS, '-o', 'json'])) as {
      items: Array<{ data?: Record<string, string> }>;
    };
    const decoded = gatewaySecrets.items.flatMap((item) =>
      Object.values(item.data ?? {}).map((v) => Buffer.from(v, 'base64').toString()),
    );
    expect(decoded.length).toBeGreaterThan(0);
    expect(decoded.filter((d) => d.includes(keyLine))).toEqual([]);
    const { stdout: mounted } = await promisify(execFile)('grep', ['-rl', keyLine, join(root, 'gateway')]).catch(
      () => ({ stdout: '' }),
    );
    expect(mounted).toBe('');
    expect(await kubectlOk(['get', 'wgw', GATEWAY, '-o', 'jsonpath={.status.acme}'])).not.toContain(END);
    // The chain the agent serves verifies against Pebble's root with openssl too.
    const rootFile = join(root, 'pebble-root-end.pem');
    writeFileSync(rootFile, pebbleRoot);
    const { stdout } = await promisify(execFile)(
      'sh',
      [
        '-c',
        `echo | openssl s_client -connect 127.0.0.1:${ports.https} -servername ${END} -verify_hostname ${END} -CAfile ${rootFile} -verify_return_error 2>&1`,
      ],
      { timeout: 10_000 },
    );
    expect(stdout).toContain('Verify return code: 0 (ok)');
  });

  it('never orders a name the tenant may not claim', async () => {
    const refused = await conditionOf('xsvc', 'web', TENANT, 'HostnameConflict');
    expect(refused?.message).toContain('*.wild.acme-tenant.example');
    expect((await conditionOf('xsvc', 'thief', OTHER, 'HostnameConflict'))?.message).toContain(OWN);
    const acme = JSON.parse(await kubectlOk(['get', 'wgw', GATEWAY, '-o', 'jsonpath={.status.acme}'])) as Record<
      string,
      Array<{ hostname: string }> | string[]
    >;
    const named = JSON.stringify(acme);
    expect(named).not.toContain('wild.acme-tenant.example');
    // The thief's own name is ordered for the thief; the name it lost is not ordered twice.
    const secrets = (
      await kubectlOk([
        'get',
        'secret',
        '-n',
        NS,
        '-l',
        `webgw.io/gateway=${GATEWAY},app.kubernetes.io/component=acme-certificate`,
        '-o',
        'jsonpath={.items[*].metadata.annotations.webgw\\.io/acme-hostname}',
      ])
    )
      .split(' ')
      .filter(Boolean);
    expect(secrets.filter((h) => h === OWN)).toHaveLength(1);
    expect(secrets).not.toContain('*.wild.acme-tenant.example');
  });

  it('renews a short-lived certificate before it expires, with no failed request under a constant load', async () => {
    const first = await httpsGet(OWN);
    let failed = 0;
    let served = 0;
    const serials = new Set<string>([first.serial]);
    // The agent-terminated name renews the same way (TLS-ALPN-01 again, the agent reloads live).
    const endSerials = new Set<string>();
    let endFailed = 0;
    const deadline = Date.now() + 1.5 * VALIDITY_S * 1000;
    while (Date.now() < deadline && (serials.size < 2 || endSerials.size < 2)) {
      const started = Date.now();
      try {
        const a = await httpsGet(OWN);
        if (a.status === 200) served += 1;
        else failed += 1;
        serials.add(a.serial);
      } catch {
        failed += 1;
      }
      const e = await relayedOver(END);
      if (e?.data === 'plain:ping') endSerials.add(e.serial);
      else endFailed += 1;
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - started))));
    }
    // Requests after the new certificate reached the proxy keep succeeding too.
    for (let i = 0; i < 20; i++) {
      const a = await httpsGet(OWN).catch(() => undefined);
      if (a?.status === 200) served += 1;
      else failed += 1;
    }
    process.stdout.write(
      `[acme] renewal under load: ${served} requests served, ${failed} failed, ${serials.size} certificates seen; agent-terminated: ${endSerials.size} certificates, ${endFailed} failed connections\n`,
    );
    expect(serials.size).toBeGreaterThanOrEqual(2);
    expect(failed).toBe(0);
    expect(endSerials.size).toBeGreaterThanOrEqual(2);
    expect(endFailed).toBe(0);
    expect((await conditionOf('xsvc', 'web', TENANT, 'CertificateReady'))?.status).toBe('True');
  }, 180_000);

  it('keeps serving when the ACME server is down, says why, and retries with backoff once it is back', async () => {
    await pebble.stop();
    await kubectlOk([
      'patch',
      'xsvc',
      'web',
      '-n',
      TENANT,
      '--type',
      'json',
      '-p',
      JSON.stringify([{ op: 'add', path: '/spec/routes/-', value: { protocol: 'HTTP', hostnames: [SECOND] } }]),
    ]);
    const failedCondition = await waitForConditionMatching(
      'xsvc',
      'web',
      TENANT,
      'CertificateReady',
      (c) => c.status === 'False' && c.reason === 'CertificateFailed',
      60_000,
    );
    expect(failedCondition.message).toContain(SECOND);
    expect(failedCondition.message).toMatch(/cannot be reached \(ECONNREFUSED\)/);
    const failures = JSON.parse(
      await kubectlOk(['get', 'wgw', GATEWAY, '-o', 'jsonpath={.status.acme.failures}']),
    ) as Array<{ hostname: string; attempts: number }>;
    expect(failures.find((f) => f.hostname === SECOND)?.attempts).toBeGreaterThanOrEqual(1);
    // The certificate already issued is still served.
    expect((await httpsGet(OWN)).status).toBe(200);
    expect(await endpointCertificates()).toEqual(
      expect.arrayContaining([expect.objectContaining({ names: [SECOND], state: 'Failed' })]),
    );

    await pebble.start();
    pebbleRoot = await pebble.rootPem(); // a new Pebble has a new root
    await waitForConditionMatching('xsvc', 'web', TENANT, 'CertificateReady', (c) => c.status === 'True', 60_000);
    const ready = await eventually(
      async () => {
        const a = await httpsGet(SECOND).catch(() => undefined);
        return a?.status === 200 ? a : undefined;
      },
      30_000,
      'the second name served with its certificate',
    );
    expect(ready.body).toBe(`hello ${SECOND} over https`);
  }, 150_000);
});
