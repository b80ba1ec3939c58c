/** The generated CRDs on a real API server: established, defaults, schema and CEL validation. */
import { installCrdsAndNamespace, kubectl, kubectlOk } from './helpers.ts';

const gateway = (name: string, spec: string): string =>
  `apiVersion: webgw.io/v1alpha1\nkind: Gateway\nmetadata: {name: ${name}}\nspec:\n${spec}`;
const xsvc = (name: string, spec: string): string =>
  `apiVersion: webgw.io/v1alpha1\nkind: ExposedService\nmetadata: {name: ${name}, namespace: default}\nspec:\n${spec}`;

describe('webgw.io CRDs', () => {
  beforeAll(async () => {
    await installCrdsAndNamespace();
  });

  it('accepts a minimal Gateway and fills in the defaults', async () => {
    await kubectlOk(
      ['apply', '-f', '-'],
      gateway('minimal', '  placement: {nodeSelector: {webgw.io/network-farmer: "true"}}\n  listeners: {http: {}}\n'),
    );
    const spec = JSON.parse(await kubectlOk(['get', 'wgw', 'minimal', '-o', 'jsonpath={.spec}'])) as {
      listeners: { http: { port: number }; tunnel: { port: number } };
    };
    expect(spec.listeners).toEqual({ http: { port: 80 }, tunnel: { port: 8443 } });
    const table = await kubectlOk(['get', 'wgw']);
    expect(table.split('\n')[0]).toMatch(/NAME\s+READY\s+ADDRESSES\s+SERVICES\s+SESSIONS\s+AGE/);
  });

  it.each([
    [
      'a tcp range upside down',
      '  placement: {}\n  listeners: {tcp: {portRange: {from: 20999, to: 20000}}}\n',
      /portRange.from must not be above portRange.to/,
    ],
    [
      'the tunnel port inside the tcp range',
      '  placement: {}\n  listeners: {tunnel: {port: 20001}, tcp: {portRange: {from: 20000, to: 20999}}}\n',
      /tunnel port must be outside the tcp portRange/,
    ],
    [
      'http and tunnel on one port',
      '  placement: {}\n  listeners: {http: {port: 8443}}\n',
      /http and tunnel listeners need different ports/,
    ],
    [
      'tls without a domain',
      '  placement: {}\n  listeners: {}\n  tls: {certificateRef: {name: wild, namespace: webgw-system}}\n',
      /tls needs a domain/,
    ],
    [
      'a port out of range',
      '  placement: {}\n  listeners: {http: {port: 70000}}\n',
      /should be less than or equal to 65535/,
    ],
  ])('rejects a Gateway with %s', async (_name, spec, message) => {
    const res = await kubectl(['apply', '-f', '-'], gateway('bad', spec));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(message);
  });

  it('accepts a full ExposedService and defaults mode and proxyProtocol', async () => {
    await kubectlOk(
      ['apply', '-f', '-'],
      xsvc(
        'shop',
        [
          '  gateways: [{name: minimal}]',
          '  selector: {app: shop}',
          '  backend: {port: 8080}',
          '  routes:',
          '    - {protocol: HTTP, hostnames: [shop.example.com], subdomain: shop}',
          '    - {protocol: TLS, hostnames: [db.example.com], termination: Passthrough, backend: {port: 5432}}',
          '    - {protocol: TLS, hostnames: [pay.example.com], termination: Agent, backendProtocol: H2C}',
          '    - {protocol: TCP, backend: {port: 6379}}',
        ].join('\n') + '\n',
      ),
    );
    const spec = JSON.parse(await kubectlOk(['get', 'xsvc', 'shop', '-n', 'default', '-o', 'jsonpath={.spec}'])) as {
      mode: string;
      proxyProtocol: string;
    };
    expect([spec.mode, spec.proxyProtocol]).toEqual(['Sidecar', 'None']);
  });

  it.each([
    [
      'both gateways and gatewaySelector',
      '  gateways: [{name: a}]\n  gatewaySelector: {}\n  selector: {app: x}\n  backend: {port: 80}\n  routes: [{protocol: TCP}]\n',
      /exactly one of gateways and gatewaySelector/,
    ],
    [
      'Sidecar without a selector',
      '  gateways: [{name: a}]\n  backend: {port: 80}\n  routes: [{protocol: TCP}]\n',
      /Sidecar mode needs a selector/,
    ],
    [
      'Connector without a service',
      '  gateways: [{name: a}]\n  mode: Connector\n  backend: {port: 80}\n  routes: [{protocol: TCP}]\n',
      /Connector mode needs backend.service/,
    ],
    [
      'an HTTP route without names',
      '  gateways: [{name: a}]\n  selector: {app: x}\n  backend: {port: 80}\n  routes: [{protocol: HTTP}]\n',
      /HTTP and TLS routes need hostnames or a subdomain/,
    ],
    [
      'a TCP route with a hostname',
      '  gateways: [{name: a}]\n  selector: {app: x}\n  backend: {port: 80}\n  routes: [{protocol: TCP, hostnames: [a.example.com]}]\n',
      /TCP routes are served on an allocated port/,
    ],
    [
      'termination on HTTP',
      '  gateways: [{name: a}]\n  selector: {app: x}\n  backend: {port: 80}\n  routes: [{protocol: HTTP, hostnames: [a.example.com], termination: Terminate}]\n',
      /termination applies to TLS routes only/,
    ],
    [
      'backendProtocol on a passed-through TLS route',
      '  gateways: [{name: a}]\n  selector: {app: x}\n  backend: {port: 80}\n  routes: [{protocol: TLS, hostnames: [a.example.com], backendProtocol: H2C}]\n',
      /backendProtocol applies to HTTP routes and to TLS routes the agent terminates/,
    ],
    [
      'an invalid hostname',
      '  gateways: [{name: a}]\n  selector: {app: x}\n  backend: {port: 80}\n  routes: [{protocol: HTTP, hostnames: [Not_A_Host]}]\n',
      /should match/,
    ],
    [
      'no routes',
      '  gateways: [{name: a}]\n  selector: {app: x}\n  backend: {port: 80}\n  routes: []\n',
      /should have at least 1 items/,
    ],
  ])('rejects an ExposedService with %s', async (_name, spec, message) => {
    const res = await kubectl(['apply', '-f', '-'], xsvc('bad', spec));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(message);
  });

  it('explains the fields (structural schema)', async () => {
    const text = await kubectlOk(['explain', 'exposedservices.spec.routes.subdomain']);
    expect(text).toMatch(/Served as <subdomain>\.<gateway domain>/);
  });
});
