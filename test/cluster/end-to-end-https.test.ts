/**
 * HTTPS terminated at the gateway, end to end (issue 16): a farmer's wildcard certificate in a
 * kubernetes.io/tls Secret (as cert-manager keeps one) named by Gateway.spec.tls; the controller
 * checks it, copies it to the proxy pods' Secret and grants https for the names it covers; then
 * the gateway and the agent run from the rendered pod specs, clients verify the chain against the
 * issuing CA, plain HTTP is redirected, a TLS route with termination: Terminate gets plaintext,
 * a gRPC server (route backendProtocol: H2C) answers grpc-js through the gateway over HTTP/2,
 * and a renewed certificate reaches new handshakes without a restart.
 */
import { once } from 'node:events';
import { connect as http2Connect } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { createCA, issueServerCertificate, type KeyPairPem } from '../../src/pki/issue.ts';
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
import { agentContainer, runContainerLocally, runGatewayLocally, writeMounts } from './run-container.ts';

const NS = 'webgw-system';
const TENANT = 'e2e-https';
const FARMER = 'e2e-farmer-certs';
const DOMAIN = 'edge.https.example';
const hours = (h: number) => ({ notAfter: new Date(Date.now() + h * 3600_000) });
const raw = (b: Buffer): Buffer => b;
/** One unary gRPC method on raw bytes (no .proto needed). */
const greeter = {
  hello: {
    path: '/webgw.e2e.Greeter/Hello',
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
} satisfies grpc.ServiceDefinition;

async function listenLoopback(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function tlsSecretYaml(pair: KeyPairPem): string {
  return `apiVersion: v1
kind: Secret
metadata: {name: wildcard, namespace: ${FARMER}}
type: kubernetes.io/tls
data: {tls.crt: ${Buffer.from(pair.certPem).toString('base64')}, tls.key: ${Buffer.from(pair.keyPem).toString('base64')}}
`;
}

describe('end to end: HTTPS with the farmer certificate of Gateway.spec.tls', () => {
  const root = mkdtempSync(join(tmpdir(), 'webgw-e2e-https-'));
  const servers: Server[] = [];
  const processes: WebgwProcess[] = [];
  const publicCa = createCA('e2e public CA', hours(24));
  let controller: ControllerUnderTest;
  const ports = { http: 0, https: 0, tunnel: 0, app: 0, raw: 0, grpc: 0 };
  const grpcServer = new grpc.Server();

  function httpsGet(name: string, path = '/'): Promise<{ status: number; body: string; serial: string }> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: ports.https,
          path,
          servername: name,
          ca: publicCa.certPem,
          headers: { host: name },
          agent: false,
        },
        (res: IncomingMessage) => {
          const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber ?? '';
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), serial }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  beforeAll(async () => {
    servers.push(
      createHttpServer((req, res) => res.end(`hello ${req.headers.host} over ${req.headers['x-forwarded-proto']}`)),
    );
    servers.push(
      createTcpServer((s) => {
        s.on('error', () => {});
        s.on('data', (d) => s.write(`plain:${d.toString()}`));
      }),
    );
    const [app, raw] = await Promise.all(servers.map(listenLoopback));
    grpcServer.addService(greeter, {
      hello: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) =>
        done(
          null,
          Buffer.from(`hello ${call.request.toString()} from ${String(call.metadata.get('x-forwarded-proto')[0])}`),
        ),
    });
    ports.grpc = await new Promise<number>((resolve, reject) => {
      grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      );
    });
    Object.assign(ports, {
      app,
      raw,
      http: await freeWildcardPort(),
      https: await freeWildcardPort(),
      tunnel: await freeWildcardPort(),
    });

    controller = await startControllerWithWebhook({
      namespace: NS,
      tenants: [TENANT],
      configurationName: 'webgw-e2e-https-injector',
    });
    await kubectl(['create', 'namespace', FARMER]);
    await kubectlOk(
      ['apply', '-f', '-'],
      `${tlsSecretYaml(issueServerCertificate(publicCa, [`*.${DOMAIN}`], hours(24)))}
---
${fakeNode({ name: 'e2e-https-farmer', labels: { 'e2e-https-farmer': 'true' }, externalIp: '127.0.31.1' })}
---
apiVersion: webgw.io/v1alpha1
kind: Gateway
metadata: {name: e2e-https}
spec:
  domain: ${DOMAIN}
  tls: {certificateRef: {name: wildcard, namespace: ${FARMER}}}
  placement: {nodeSelector: {e2e-https-farmer: "true"}}
  listeners: {http: {port: ${ports.http}}, https: {port: ${ports.https}}, tunnel: {port: ${ports.tunnel}}}
  hostnamePolicy: {external: Allowed}
---
apiVersion: webgw.io/v1alpha1
kind: ExposedService
metadata: {name: web, namespace: ${TENANT}}
spec:
  gateways: [{name: e2e-https}]
  selector: {app: web}
  backend: {port: ${ports.app}}
  routes:
    - {protocol: HTTP, subdomain: web}                            # https, plain HTTP redirected
    - {protocol: HTTP, subdomain: both, redirect: false}          # https and plain HTTP
    - {protocol: HTTP, hostnames: [own.tenant.example]}           # not covered: plain HTTP
    - {protocol: TLS, subdomain: raw, termination: Terminate, backend: {port: ${ports.raw}}}
    - {protocol: HTTP, subdomain: grpc, backendProtocol: H2C, backend: {port: ${ports.grpc}}}
`,
    );
    await waitForCondition('wgw', 'e2e-https', undefined, 'CertificateReady');
    await waitForCondition('xsvc', 'web', TENANT, 'Programmed');
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await kubectl(['delete', 'xsvc', 'web', '-n', TENANT, '--wait=false']);
    await kubectl(['delete', 'wgw', 'e2e-https', '--wait=false']);
    await controller?.close();
    for (const s of servers) s.close();
    grpcServer.forceShutdown();
    rmSync(root, { recursive: true, force: true });
  });

  it('reports the certificate and the URLs that work (https where it covers the name)', async () => {
    expect(
      JSON.parse(await kubectlOk(['get', 'wgw', 'e2e-https', '-o', 'jsonpath={.status.certificate}'])),
    ).toMatchObject({ secret: `${FARMER}/wildcard`, names: [`*.${DOMAIN}`] });
    const urls = await eventually(
      async () => {
        const text = await kubectlOk([
          'get',
          'xsvc',
          'web',
          '-n',
          TENANT,
          '-o',
          'jsonpath={.status.endpoints[0].urls}',
        ]);
        const list = text ? (JSON.parse(text) as string[]) : [];
        return list.length === 6 ? list : undefined;
      },
      30_000,
      'six URLs',
    );
    expect(urls.sort()).toEqual(
      [
        `http://both.${DOMAIN}:${ports.http}`,
        `http://own.tenant.example:${ports.http}`,
        `https://grpc.${DOMAIN}:${ports.https}`,
        `https://both.${DOMAIN}:${ports.https}`,
        `https://raw.${DOMAIN}:${ports.https}`,
        `https://web.${DOMAIN}:${ports.https}`,
      ].sort(),
    );
    expect(
      JSON.parse(
        await kubectlOk(['get', 'xsvc', 'web', '-n', TENANT, '-o', 'jsonpath={.status.endpoints[0].certificates}']),
      ),
    ).toEqual([
      expect.objectContaining({
        names: expect.arrayContaining([`web.${DOMAIN}`, `raw.${DOMAIN}`]),
        state: 'Ready',
        source: 'Gateway',
        issuer: expect.stringContaining('e2e public CA'),
      }),
    ]);
    expect((await conditionOf('xsvc', 'web', TENANT, 'CertificateReady'))?.status).toBe('True');
  });

  it('serves HTTPS, the redirect and terminated TLS through processes run from the rendered pod specs, and a renewal without restart', async () => {
    const pod = await createWorkloadPod(TENANT, 'web-0', { app: 'web' });
    await waitForAdmission('e2e-https', NS, TENANT, 'web');
    const { process: gateway, template } = await runGatewayLocally('e2e-https', NS, join(root, 'gateway'));
    processes.push(gateway);
    const agent = await runContainerLocally(agentContainer(pod), pod.volumes, TENANT, join(root, 'agent'));
    processes.push(agent);
    await agent.waitForLog((l) => l.msg === 'tunnel connected', 20_000);

    const first = await httpsGet(`web.${DOMAIN}`, '/x');
    expect(first).toMatchObject({ status: 200, body: `hello web.${DOMAIN} over https` });
    const redirect = await get(ports.http, `web.${DOMAIN}`, '/x?y=1');
    expect(redirect.status).toBe(308);
    expect(redirect.headers.location).toBe(`https://web.${DOMAIN}:${ports.https}/x?y=1`);
    expect((await get(ports.http, `both.${DOMAIN}`)).body).toBe(`hello both.${DOMAIN} over http`);
    expect((await httpsGet(`both.${DOMAIN}`)).body).toBe(`hello both.${DOMAIN} over https`);
    expect((await get(ports.http, 'own.tenant.example')).body).toBe('hello own.tenant.example over http');

    const raw = tlsConnect({ host: '127.0.0.1', port: ports.https, servername: `raw.${DOMAIN}`, ca: publicCa.certPem });
    await once(raw, 'secureConnect');
    raw.write('ping');
    const [data] = (await once(raw, 'data')) as [Buffer];
    expect(data.toString()).toBe('plain:ping');
    raw.destroy();

    // HTTP/2 (ALPN h2) to the HTTP/1.1 app, and gRPC to the h2c backend.
    const h2 = http2Connect(`https://127.0.0.1:${ports.https}`, { ca: publicCa.certPem, servername: `web.${DOMAIN}` });
    const answer = await new Promise<string>((resolve, reject) => {
      const req = h2.request({ ':path': '/h2', ':authority': `web.${DOMAIN}` });
      let text = '';
      req.on('data', (c: Buffer) => {
        text += c.toString();
      });
      req.on('end', () => resolve(text));
      req.on('error', reject);
    });
    expect(h2.alpnProtocol).toBe('h2');
    h2.close();
    expect(answer).toBe(`hello web.${DOMAIN} over https`);
    const Greeter = grpc.makeGenericClientConstructor(greeter, 'Greeter');
    const client = new Greeter(`127.0.0.1:${ports.https}`, grpc.credentials.createSsl(Buffer.from(publicCa.certPem)), {
      'grpc.ssl_target_name_override': `grpc.${DOMAIN}`,
      'grpc.default_authority': `grpc.${DOMAIN}`,
    }) as unknown as grpc.Client & {
      hello(m: Buffer, o: grpc.CallOptions, done: (err: grpc.ServiceError | null, r: Buffer) => void): void;
    };
    const reply = await new Promise<string>((resolve, reject) => {
      client.hello(Buffer.from('tenant'), { deadline: Date.now() + 10_000 }, (err, r) =>
        err ? reject(err) : resolve(r.toString()),
      );
    });
    client.close();
    expect(reply).toBe('hello tenant from https');

    // The farmer renews (cert-manager rewrites the Secret); the controller reads it again on its
    // next look (every 5 minutes, or at once on any Gateway event: an annotation here), copies it
    // to the proxy Secret, and the proxy reloads the projected files (as the kubelet writes them).
    await kubectlOk(['apply', '-f', '-'], tlsSecretYaml(issueServerCertificate(publicCa, [`*.${DOMAIN}`], hours(48))));
    await kubectlOk(['annotate', 'wgw', 'e2e-https', `test/renewed=${Date.now()}`, '--overwrite']);
    const copied = await eventually(
      async () => {
        const now = await kubectlOk(['get', 'wgw', 'e2e-https', '-o', 'jsonpath={.status.certificate.notAfter}']);
        return Date.parse(now) > Date.now() + 30 * 3600_000 ? now : undefined;
      },
      30_000,
      'the renewed certificate in the Gateway status',
    );
    expect(copied).toBeTruthy();
    await writeMounts(template.containers[0]!, template.volumes, NS, join(root, 'gateway'));
    await eventually(
      async () => (await httpsGet(`web.${DOMAIN}`)).serial !== first.serial,
      20_000,
      'the renewed certificate served',
    );
    expect((await conditionOf('wgw', 'e2e-https', undefined, 'CertificateReady'))?.status).toBe('True');
  });

  it('refuses a certificate that does not cover the domain, says why, and falls back to plain HTTP', async () => {
    await kubectlOk(
      ['apply', '-f', '-'],
      tlsSecretYaml(issueServerCertificate(publicCa, ['*.elsewhere.example'], hours(24))),
    );
    await kubectlOk(['annotate', 'wgw', 'e2e-https', `test/renewed=${Date.now()}`, '--overwrite']);
    const condition = await waitForConditionMatching(
      'wgw',
      'e2e-https',
      undefined,
      'CertificateReady',
      (c) => c.status === 'False',
    );
    expect(condition).toMatchObject({
      reason: 'CertificateInvalid',
      message: expect.stringContaining(`does not cover *.${DOMAIN}`),
    });
    expect(await kubectlOk(['get', 'wgw', 'e2e-https', '-o', 'jsonpath={.status.certificate}'])).toBe('');
    expect(await kubectlOk(['get', 'secret', 'webgw-gw-e2e-https-certs', '-n', NS, '-o', 'jsonpath={.data}'])).toBe('');
    // The grants follow: web is plain HTTP again, and the terminated TLS route is refused.
    await eventually(
      async () => {
        const urls = JSON.parse(
          (await kubectlOk(['get', 'xsvc', 'web', '-n', TENANT, '-o', 'jsonpath={.status.endpoints[0].urls}'])) || '[]',
        ) as string[];
        return urls.includes(`http://web.${DOMAIN}:${ports.http}`) && !urls.some((u) => u.startsWith('https://'))
          ? urls
          : undefined;
      },
      30_000,
      'plain HTTP URLs only',
    );
    const refused = await conditionOf('xsvc', 'web', TENANT, 'HostnameConflict');
    expect(refused?.message).toContain(`no certificate for raw.${DOMAIN}`);
  });
});
