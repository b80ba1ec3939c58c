/** The ExposedService reconciler on the real control plane: credentials, claims, tenancy. */
import { X509Certificate } from 'node:crypto';
import { parse } from 'yaml';
import { agentConfigSchema } from '../../src/agent/config.ts';
import { createLogger } from '../../src/common/log.ts';
import { Manager } from '../../src/controller/manager.ts';
import { loadKubeConfig } from '../../src/controller/runtime/kube.ts';
import { eventually, fakeNode, installCrdsAndNamespace, kubectl, kubectlOk, plane } from './helpers.ts';

const NS = 'webgw-system';
const log = createLogger({ test: 'xsvc-controller' }, { level: 'error' });

interface Xsvc {
  status?: {
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
    endpoints?: Array<{
      gateway: string;
      urls?: string[];
      tcp?: Array<{ address?: string; port: number; backendPort: number }>;
    }>;
  };
}
const getXsvc = async (ns: string, name: string): Promise<Xsvc> =>
  JSON.parse(await kubectlOk(['get', 'xsvc', name, '-n', ns, '-o', 'json'])) as Xsvc;
const cond = (x: Xsvc, type: string) => x.status?.conditions?.find((c) => c.type === type);

async function secretData(ns: string, name: string): Promise<Record<string, string> | undefined> {
  const r = await kubectl(['get', 'secret', name, '-n', ns, '-o', 'jsonpath={.data}']);
  if (r.code !== 0 || !r.stdout) return undefined;
  return Object.fromEntries(
    Object.entries(JSON.parse(r.stdout) as Record<string, string>).map(([k, v]) => [
      k,
      Buffer.from(v, 'base64').toString(),
    ]),
  );
}

const xsvc = (ns: string, name: string, routes: string): string => `
apiVersion: webgw.io/v1alpha1
kind: ExposedService
metadata: {name: ${name}, namespace: ${ns}}
spec:
  gateways: [{name: xs-eu}]
  selector: {app: ${name}}
  backend: {port: 8080}
  routes: ${routes}
`;

describe('ExposedService controller', () => {
  let manager: Manager;

  beforeAll(async () => {
    await installCrdsAndNamespace(NS);
    for (const [ns, labels] of [
      ['tenant-a', 'tenant=yes'],
      ['tenant-b', 'tenant=yes'],
      ['outsider', 'tenant=no'],
    ] as const) {
      await kubectl(['create', 'namespace', ns]);
      await kubectlOk(['label', 'namespace', ns, labels, '--overwrite']);
    }
    await kubectlOk(
      ['apply', '-f', '-'],
      fakeNode({ name: 'xs-farmer', labels: { 'xs-farmer': 'true' }, externalIp: '127.0.20.1' }) +
        `---
apiVersion: webgw.io/v1alpha1
kind: Gateway
metadata: {name: xs-eu}
spec:
  domain: eu1.gw.example.net
  placement: {nodeSelector: {xs-farmer: "true"}}
  listeners: {http: {port: 80}, https: {port: 443}, tcp: {portRange: {from: 21000, to: 21009}}}
  hostnamePolicy: {external: Allowed}   # the tests' names are not in real DNS
  allowedNamespaces: {selector: {matchLabels: {tenant: "yes"}}}
`,
    );
    manager = new Manager({
      kc: loadKubeConfig(plane().kubeconfig),
      namespace: NS,
      image: 'webgw:test',
      leaderElection: false,
      logger: log,
    });
    await manager.start();
    await eventually(
      async () =>
        (await kubectlOk(['get', 'wgw', 'xs-eu', '-o', 'jsonpath={.status.tunnelEndpoints}'])).includes('127.0.20.1'),
      90_000,
      'gateway endpoints',
    );
  });

  afterAll(async () => {
    await manager.close();
  });

  it('issues credentials whose grants are exactly what was accepted, and reports the URLs', async () => {
    await kubectlOk(
      ['apply', '-f', '-'],
      xsvc(
        'tenant-a',
        'shop',
        '[{protocol: HTTP, hostnames: [shop.example.com], subdomain: shop}, {protocol: TCP, backend: {port: 6379}}]',
      ),
    );
    const status = await eventually(
      async () => {
        const x = await getXsvc('tenant-a', 'shop');
        // Programmed, and its gateway's one replica read: no gateway process runs in this file.
        return cond(x, 'Programmed')?.status === 'True' && /unreachable/.test(cond(x, 'Ready')?.message ?? '')
          ? x
          : undefined;
      },
      60_000,
      'shop Programmed, its gateway replica read',
    );
    expect(cond(status, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'NoAgentConnected',
      message: expect.stringMatching(/^xs-eu: replica webgw-gw-xs-eu-\S+ unreachable$/),
    });
    expect(status.status?.endpoints).toEqual([
      {
        gateway: 'xs-eu',
        urls: ['http://shop.example.com', 'http://shop.eu1.gw.example.net'],
        tcp: [{ address: '127.0.20.1', port: 21000, backendPort: 6379 }],
        sessions: 0,
        replicas: [{ name: expect.stringMatching(/^webgw-gw-xs-eu-/), sessions: 0, reachable: false }],
      },
    ]);
    const data = (await secretData('tenant-a', 'webgw-agent-shop'))!;
    const cert = new X509Certificate(data['xs-eu.crt']!);
    expect(cert.subjectAltName).toMatch(
      /^URI:webgw:http:shop\.example\.com, URI:webgw:http:shop\.eu1\.gw\.example\.net, URI:webgw:tcp:21000, URI:webgw:id:tenant-a\/shop\/[0-9a-f-]+$/,
    );
    const gatewayCa = await kubectlOk([
      'get',
      'secret',
      'webgw-gw-xs-eu-ca',
      '-n',
      NS,
      '-o',
      'jsonpath={.data.ca\\.crt}',
    ]);
    expect(cert.checkIssued(new X509Certificate(Buffer.from(gatewayCa, 'base64')))).toBe(true);
    const config = agentConfigSchema.parse(parse(data['agent.yaml']!));
    expect(config.gateways[0]).toMatchObject({
      name: 'xs-eu',
      endpoints: ['wss://127.0.20.1:8443'],
      serverName: 'xs-eu.gateway.webgw.io',
    });
  });

  it('a later claimant from another namespace gets HostnameConflict; the holder keeps serving', async () => {
    await kubectlOk(
      ['apply', '-f', '-'],
      xsvc('tenant-b', 'copy', '[{protocol: HTTP, hostnames: [shop.example.com, copy.example.com]}]'),
    );
    const copy = await eventually(
      async () => {
        const x = await getXsvc('tenant-b', 'copy');
        return cond(x, 'HostnameConflict')?.status === 'True' ? x : undefined;
      },
      60_000,
      'conflict',
    );
    expect(cond(copy, 'HostnameConflict')?.message).toMatch(
      /HTTP shop\.example\.com on xs-eu is held by tenant-a\/shop/,
    );
    expect(copy.status?.endpoints?.[0]?.urls).toEqual(['http://copy.example.com']);
    expect(cond(await getXsvc('tenant-a', 'shop'), 'HostnameConflict')?.status).toBe('False');
  });

  it("refuses a namespace outside the gateway's allowedNamespaces", async () => {
    await kubectlOk(
      ['apply', '-f', '-'],
      xsvc('outsider', 'sneaky', '[{protocol: HTTP, hostnames: [sneaky.example.com]}]'),
    );
    const x = await eventually(
      async () => {
        const s = await getXsvc('outsider', 'sneaky');
        return cond(s, 'Accepted')?.status === 'False' ? s : undefined;
      },
      60_000,
      'Accepted=False',
    );
    expect(cond(x, 'Accepted')).toMatchObject({ reason: 'NamespaceNotAllowed' });
    const data = await secretData('outsider', 'webgw-agent-sneaky');
    expect(Object.keys(data ?? {}).filter((k) => k.endsWith('.crt'))).toEqual([]);
  });

  it('deleting the holder removes its Secret; its names stay reserved for its namespace, so re-creating it takes them back', async () => {
    await kubectlOk(['delete', 'xsvc', 'shop', '-n', 'tenant-a', '--wait=true']);
    await eventually(
      async () => (await secretData('tenant-a', 'webgw-agent-shop')) === undefined,
      60_000,
      'the Secret to go',
    );
    // The next claimant from another namespace does not get the name (issue 12: takeover on re-creation).
    await eventually(
      async () =>
        /shop\.example\.com on xs-eu is held by namespace tenant-a \(reserved\)/.test(
          cond(await getXsvc('tenant-b', 'copy'), 'HostnameConflict')?.message ?? '',
        ),
      60_000,
      'the reservation to show',
    );
    // The gateway's reconcile (gathered over a burst of changes) records when the name was released.
    await eventually(
      async () =>
        /^shop\.example\.com tenant-a \d{4}-/m.test(
          await kubectlOk([
            'get',
            'cm',
            'webgw-gw-xs-eu-reservations',
            '-n',
            NS,
            '-o',
            'jsonpath={.data.reservations\\.txt}',
          ]),
        ),
      15_000,
      'the release time in the reservations',
    );
    // A GitOps replace: the same ExposedService applied again, now younger than the claimant.
    await kubectlOk(
      ['apply', '-f', '-'],
      xsvc('tenant-a', 'shop', '[{protocol: HTTP, hostnames: [shop.example.com]}]'),
    );
    const shop = await eventually(
      async () => {
        const x = await getXsvc('tenant-a', 'shop');
        return cond(x, 'Programmed')?.status === 'True' && cond(x, 'HostnameConflict')?.status === 'False'
          ? x
          : undefined;
      },
      60_000,
      'shop to hold its name again',
    );
    expect(shop.status?.endpoints?.[0]?.urls).toEqual(['http://shop.example.com']);
    await eventually(
      async () =>
        /shop\.example\.com on xs-eu is held by tenant-a\/shop/.test(
          cond(await getXsvc('tenant-b', 'copy'), 'HostnameConflict')?.message ?? '',
        ),
      60_000,
      'the conflict to name the holder again',
    );
    const cert = new X509Certificate((await secretData('tenant-b', 'webgw-agent-copy'))!['xs-eu.crt']!);
    expect(cert.subjectAltName).not.toContain('URI:webgw:http:shop.example.com');
  });

  it('never adopts a Secret it did not create: the ExposedService says what is in the way', async () => {
    await kubectlOk([
      'create',
      'secret',
      'generic',
      'webgw-agent-mine',
      '-n',
      'tenant-a',
      '--from-literal=password=hunter2',
    ]);
    await kubectlOk(
      ['apply', '-f', '-'],
      xsvc('tenant-a', 'mine', '[{protocol: HTTP, hostnames: [mine.example.com]}]'),
    );
    const x = await eventually(
      async () => {
        const s = await getXsvc('tenant-a', 'mine');
        return cond(s, 'Ready')?.reason === 'ObjectInTheWay' ? s : undefined;
      },
      60_000,
      'Ready=False ObjectInTheWay',
    );
    expect(cond(x, 'Ready')?.message).toContain('Secret tenant-a/webgw-agent-mine');
    const secret = JSON.parse(
      await kubectlOk(['get', 'secret', 'webgw-agent-mine', '-n', 'tenant-a', '-o', 'json']),
    ) as { data: Record<string, string>; metadata: { ownerReferences?: unknown[] } };
    expect(Object.keys(secret.data)).toEqual(['password']);
    expect(secret.metadata.ownerReferences).toBeUndefined();
    // Deleting the ExposedService leaves the user's Secret alone.
    await kubectlOk(['delete', 'xsvc', 'mine', '-n', 'tenant-a', '--wait=true']);
    await new Promise((r) => setTimeout(r, 2000));
    expect((await kubectl(['get', 'secret', 'webgw-agent-mine', '-n', 'tenant-a'])).code).toBe(0);
  });
});

describe('Connector mode', () => {
  let manager: Manager;
  beforeAll(async () => {
    await installCrdsAndNamespace(NS);
    manager = new Manager({
      kc: loadKubeConfig(plane().kubeconfig),
      namespace: NS,
      image: 'webgw:test',
      leaderElection: false,
      logger: log,
    });
    await manager.start();
  });
  afterAll(async () => {
    await manager.close();
  });

  it('runs an agent Deployment that forwards to the Service, and its pods run', async () => {
    await kubectl(['create', 'namespace', 'connector-ns']);
    await kubectlOk(['label', 'namespace', 'connector-ns', 'tenant=yes', '--overwrite']);
    await kubectlOk(
      ['apply', '-f', '-'],
      `
apiVersion: webgw.io/v1alpha1
kind: ExposedService
metadata: {name: legacy, namespace: connector-ns}
spec:
  gateways: [{name: xs-eu}]
  mode: Connector
  backend: {service: legacy-svc, port: 80}
  routes: [{protocol: HTTP, hostnames: [legacy.example.com]}]
`,
    );
    await eventually(
      async () => (await kubectl(['get', 'deploy', 'webgw-connector-legacy', '-n', 'connector-ns'])).code === 0,
      60_000,
      'the connector Deployment',
    );
    await kubectlOk([
      'wait',
      '--for=condition=Available',
      'deploy/webgw-connector-legacy',
      '-n',
      'connector-ns',
      '--timeout=90s',
    ]);
    const spec = JSON.parse(
      await kubectlOk([
        'get',
        'deploy',
        'webgw-connector-legacy',
        '-n',
        'connector-ns',
        '-o',
        'jsonpath={.spec.template.spec}',
      ]),
    ) as { automountServiceAccountToken: boolean; volumes: Array<{ secret?: { secretName: string } }> };
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.volumes[0]!.secret!.secretName).toBe('webgw-agent-legacy');
    const agentYaml = (await secretData('connector-ns', 'webgw-agent-legacy'))!['agent.yaml']!;
    expect(agentYaml).toContain('backend: legacy-svc.connector-ns.svc:80');
  });
});
