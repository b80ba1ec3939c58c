import { planClaims, selectorMatches, type NamespaceInfo } from '../../src/controller/exposedservice/claims.ts';
import type { ExposedService, Gateway } from '../../src/crds/types.ts';

function gw(name: string, spec: Partial<Gateway['spec']> = {}, labels: Record<string, string> = {}): Gateway {
  return {
    apiVersion: 'webgw.io/v1alpha1',
    kind: 'Gateway',
    metadata: { name, labels },
    // External names as they come (Allowed) unless a test sets the policy: most tests are about other rules.
    spec: {
      placement: {},
      listeners: { http: { port: 80 }, tcp: { portRange: { from: 20000, to: 20002 } }, tunnel: { port: 8443 } },
      hostnamePolicy: { external: 'Allowed' },
      ...spec,
    },
  };
}

function xsvc(
  ns: string,
  name: string,
  created: string,
  spec: Partial<ExposedService['spec']>,
  status?: ExposedService['status'],
): ExposedService {
  return {
    apiVersion: 'webgw.io/v1alpha1',
    kind: 'ExposedService',
    metadata: { name, namespace: ns, creationTimestamp: created },
    spec: {
      gateways: [{ name: 'eu' }],
      mode: 'Sidecar',
      selector: { app: name },
      backend: { port: 8080 },
      routes: [],
      proxyProtocol: 'None',
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

const namespaces: NamespaceInfo[] = [
  { name: 'a', labels: { tenant: 'yes' } },
  { name: 'b', labels: { tenant: 'yes' } },
  { name: 'c', labels: {} },
];

describe('hostname claims', () => {
  it('the oldest claimant keeps a hostname; the later one gets a conflict and keeps its other names', () => {
    const plans = planClaims(
      [gw('eu')],
      [
        xsvc('b', 'late', '2026-01-02T00:00:00Z', {
          routes: [{ protocol: 'HTTP', hostnames: ['shop.example.com', 'late.example.com'] }],
        }),
        xsvc('a', 'early', '2026-01-01T00:00:00Z', { routes: [{ protocol: 'HTTP', hostnames: ['shop.example.com'] }] }),
      ],
      namespaces,
    );
    expect(plans.get('a/early')!.gateways[0]).toMatchObject({ http: ['shop.example.com'], conflicts: [] });
    expect(plans.get('b/late')!.gateways[0]).toMatchObject({
      http: ['late.example.com'],
      conflicts: [{ protocol: 'HTTP', hostname: 'shop.example.com', holder: 'a/early' }],
    });
  });

  it('marks the names of H2C routes, and only those, for HTTP/2 to the backend', () => {
    const plans = planClaims(
      [gw('eu')],
      [
        xsvc('a', 'grpc', '2026-01-01T00:00:00Z', {
          routes: [
            { protocol: 'HTTP', hostnames: ['api.example.com'], backendProtocol: 'H2C' },
            { protocol: 'HTTP', hostnames: ['www.example.com'], backendProtocol: 'HTTP1' },
            { protocol: 'HTTP', hostnames: ['old.example.com'] },
          ],
        }),
        xsvc('b', 'late', '2026-01-02T00:00:00Z', {
          routes: [{ protocol: 'HTTP', hostnames: ['api.example.com'], backendProtocol: 'H2C' }],
        }),
      ],
      namespaces,
    );
    expect(plans.get('a/grpc')!.gateways[0]).toMatchObject({
      http: ['api.example.com', 'www.example.com', 'old.example.com'],
      h2c: ['api.example.com'],
    });
    // A name another service holds is not marked for the one that lost it.
    expect(plans.get('b/late')!.gateways[0]).toMatchObject({ http: [], h2c: [] });
  });

  it('decides ties by namespace/name, the same way every time', () => {
    const t = '2026-01-01T00:00:00Z';
    const route = { routes: [{ protocol: 'HTTP' as const, hostnames: ['x.example.com'] }] };
    const one = planClaims([gw('eu')], [xsvc('b', 's', t, route), xsvc('a', 's', t, route)], namespaces);
    const two = planClaims([gw('eu')], [xsvc('a', 's', t, route), xsvc('b', 's', t, route)], namespaces);
    expect(one.get('a/s')!.gateways[0]!.http).toEqual(['x.example.com']);
    expect(two.get('a/s')!.gateways[0]!.http).toEqual(['x.example.com']);
  });

  it('gives a hostname one owner across protocols (HTTP and TLS passthrough of a name serve the same visitors)', () => {
    const plans = planClaims(
      [gw('eu', { domain: 'eu1.gw.example.net' }), gw('us')],
      [
        xsvc('a', 'web', '2026-01-01T00:00:00Z', {
          gateways: [{ name: 'eu' }, { name: 'us' }],
          routes: [
            { protocol: 'HTTP', hostnames: ['Shop.Example.com'], subdomain: 'shop' },
            { protocol: 'TLS', hostnames: ['shop.example.com'] },
          ],
        }),
        xsvc('b', 'db', '2026-01-02T00:00:00Z', {
          gateways: [{ name: 'eu' }],
          routes: [{ protocol: 'TLS', hostnames: ['shop.example.com'] }],
        }),
      ],
      namespaces,
    );
    const web = plans.get('a/web')!;
    expect(web.gateways.map((g) => [g.gateway, g.http, g.tls])).toEqual([
      ['eu', ['shop.example.com', 'shop.eu1.gw.example.net'], ['shop.example.com']],
      ['us', ['shop.example.com'], ['shop.example.com']],
    ]);
    expect(plans.get('b/db')!.gateways[0]).toMatchObject({
      tls: [],
      conflicts: [{ protocol: 'TLS', hostname: 'shop.example.com', holder: 'a/web' }],
    });
  });

  const policy: Array<[string, Partial<Gateway['spec']>, string, string | undefined]> = [
    ['a single label under the domain', {}, 'shop.eu1.gw.example.net', undefined],
    ['two labels under the domain', {}, 'a.shop.eu1.gw.example.net', 'single labels'],
    ['the domain itself', {}, 'eu1.gw.example.net', 'itself'],
    ['a name above the domain', {}, 'gw.example.net', 'itself'],
    [
      'a wildcard over the domain',
      { hostnamePolicy: { wildcards: 'Allowed' } },
      '*.eu1.gw.example.net',
      'wildcard over the gateway domain',
    ],
    [
      'a wildcard deeper under the domain',
      { hostnamePolicy: { wildcards: 'Allowed' } },
      '*.shop.eu1.gw.example.net',
      'wildcards under the gateway domain',
    ],
    [
      'a wildcard above the domain',
      { hostnamePolicy: { wildcards: 'Allowed' } },
      '*.gw.example.net',
      'wildcard over the gateway domain',
    ],
    ['a wildcard elsewhere, by default', {}, '*.shop.example', 'wildcard hostnames are not allowed'],
    [
      'a wildcard elsewhere, allowed',
      { hostnamePolicy: { wildcards: 'Allowed', external: 'Allowed' } },
      '*.shop.example',
      undefined,
    ],
    ['an external name, allowed', { hostnamePolicy: { external: 'Allowed' } }, 'shop.example', undefined],
    ['an external name, by default: proof needed', { hostnamePolicy: {} }, 'shop.example', 'not proven yet'],
    ['an external name, forbidden', { hostnamePolicy: { external: 'Forbidden' } }, 'shop.example', 'only names under'],
  ];
  it.each(policy)('hostnamePolicy: %s', (_name, spec, hostname, refused) => {
    const plans = planClaims(
      [gw('eu', { domain: 'eu1.gw.example.net', ...spec })],
      [xsvc('a', 'web', 't', { routes: [{ protocol: 'HTTP', hostnames: [hostname] }] })],
      namespaces,
    );
    const gp = plans.get('a/web')!.gateways[0]!;
    if (refused === undefined) {
      expect(gp).toMatchObject({ http: [hostname], refused: [] });
    } else {
      expect(gp.http).toEqual([]);
      expect(gp.refused[0]!.why).toContain(refused);
    }
  });
});

describe('proof of control (hostnamePolicy.external: Verified)', () => {
  const verifiedGw = gw('eu', { domain: 'eu1.gw.example.net', hostnamePolicy: { external: 'Verified' } });
  const withUids: NamespaceInfo[] = [
    { name: 'a', labels: {}, uid: 'uid-a' },
    { name: 'b', labels: {}, uid: 'uid-b' },
  ];
  const early = xsvc('b', 'squat', '2026-01-01T00:00:00Z', {
    routes: [{ protocol: 'HTTP', hostnames: ['shop.example'], subdomain: 'squat' }],
  });
  const owner = xsvc('a', 'shop', '2026-02-01T00:00:00Z', {
    routes: [{ protocol: 'HTTP', hostnames: ['shop.example'] }],
  });

  it('an early claimant without proof gets nothing outside the domain; the namespace that proved it gets the name', () => {
    const proven = (hostname: string, uid: string) => hostname === 'shop.example' && uid === 'uid-a';
    const plans = planClaims([verifiedGw], [early, owner], withUids, { verified: proven });
    expect(plans.get('b/squat')!.gateways[0]).toMatchObject({ http: ['squat.eu1.gw.example.net'] });
    expect(plans.get('b/squat')!.gateways[0]!.refused[0]!.why).toMatch(
      /^not proven yet: publish the TXT record _webgw-challenge\.shop\.example with the value "webgw-verification=[0-9a-f]{32}"$/,
    );
    expect(plans.get('a/shop')!.gateways[0]).toMatchObject({ http: ['shop.example'], refused: [] });
  });

  it("the farmer's trustedNamespaces need no proof", () => {
    const trusting = gw('eu', {
      domain: 'eu1.gw.example.net',
      hostnamePolicy: { trustedNamespaces: { selector: { matchLabels: { tenant: 'yes' } } } },
    });
    const plans = planClaims([trusting], [owner], [{ name: 'a', labels: { tenant: 'yes' }, uid: 'uid-a' }], {
      verified: () => false,
    });
    expect(plans.get('a/shop')!.gateways[0]!.http).toEqual(['shop.example']);
  });

  it('without any proof, nobody gets the name; names under the domain need none', () => {
    const plans = planClaims([verifiedGw], [early, owner], withUids, { verified: () => false });
    expect(plans.get('a/shop')!.gateways[0]!.http).toEqual([]);
    expect(plans.get('b/squat')!.gateways[0]!.http).toEqual(['squat.eu1.gw.example.net']);
  });
});

describe('per-namespace quotas', () => {
  it('one namespace cannot take every TCP port of a shared gateway', () => {
    const g = gw('eu', {
      listeners: { tcp: { portRange: { from: 20000, to: 20009 } }, tunnel: { port: 8443 } },
      limits: { maxTcpPortsPerNamespace: 3 },
    });
    const greedy = Array.from({ length: 8 }, (_, i) =>
      xsvc('a', `s${i}`, `2026-01-01T00:00:0${i}Z`, { routes: [{ protocol: 'TCP' }] }),
    );
    const plans = planClaims(
      [g],
      [...greedy, xsvc('b', 'late', '2026-01-02T00:00:00Z', { routes: [{ protocol: 'TCP' }] })],
      namespaces,
    );
    const held = greedy.flatMap((s) => plans.get(`a/${s.metadata.name}`)!.gateways[0]!.tcp.map((t) => t.port));
    expect(held).toEqual([20000, 20001, 20002]);
    expect(plans.get('a/s3')!.gateways[0]).toMatchObject({ accepted: false, reason: 'NamespaceQuotaExceeded' });
    expect(plans.get('b/late')!.gateways[0]!.tcp.map((t) => t.port)).toEqual([20003]);
  });

  it('serves at most maxServicesPerNamespace ExposedServices of one namespace, the oldest first', () => {
    const services = Array.from({ length: 4 }, (_, i) =>
      xsvc('a', `s${i}`, `2026-01-01T00:00:0${i}Z`, { routes: [{ protocol: 'HTTP', hostnames: [`s${i}.example`] }] }),
    );
    const plans = planClaims(
      [gw('eu', { limits: { maxServicesPerNamespace: 2 } })],
      [
        ...services,
        xsvc('b', 'other', '2026-01-03T00:00:00Z', { routes: [{ protocol: 'HTTP', hostnames: ['other.example'] }] }),
      ],
      namespaces,
    );
    expect(services.map((s) => plans.get(`a/${s.metadata.name}`)!.gateways[0]!.accepted)).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect(plans.get('a/s3')!.gateways[0]!.message).toContain('maxServicesPerNamespace');
    expect(plans.get('b/other')!.gateways[0]!.accepted).toBe(true);
  });
});

describe('gateway resolution and admission', () => {
  it('reports gateways that do not exist', () => {
    const plans = planClaims(
      [gw('eu')],
      [xsvc('a', 's', 't', { gateways: [{ name: 'eu' }, { name: 'nowhere' }], routes: [{ protocol: 'TCP' }] })],
      namespaces,
    );
    expect(plans.get('a/s')!.missingGateways).toEqual(['nowhere']);
  });

  it('selects gateways by label', () => {
    const { gateways: _g, ...rest } = xsvc('a', 's', 't', { routes: [{ protocol: 'TCP' }] }).spec;
    const service = xsvc('a', 's', 't', {});
    service.spec = { ...rest, gatewaySelector: { matchLabels: { region: 'eu' } } };
    const plans = planClaims([gw('eu1', {}, { region: 'eu' }), gw('us1', {}, { region: 'us' })], [service], namespaces);
    expect(plans.get('a/s')!.gateways.map((g) => g.gateway)).toEqual(['eu1']);
  });

  it('refuses a namespace outside allowedNamespaces', () => {
    const plans = planClaims(
      [gw('eu', { allowedNamespaces: { selector: { matchLabels: { tenant: 'yes' } } } })],
      [xsvc('c', 'outsider', 't', { routes: [{ protocol: 'HTTP', hostnames: ['o.example.com'] }] })],
      namespaces,
    );
    expect(plans.get('c/outsider')!.gateways[0]).toMatchObject({
      accepted: false,
      reason: 'NamespaceNotAllowed',
      http: [],
    });
  });

  it.each([
    [{ matchLabels: { a: '1' } }, { a: '1', b: '2' }, true],
    [{ matchLabels: { a: '1' } }, { a: '2' }, false],
    [{ matchExpressions: [{ key: 'a', operator: 'In' as const, values: ['1', '2'] }] }, { a: '2' }, true],
    [{ matchExpressions: [{ key: 'a', operator: 'NotIn' as const, values: ['1'] }] }, {}, true],
    [{ matchExpressions: [{ key: 'a', operator: 'Exists' as const }] }, {}, false],
    [{ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' as const }] }, {}, true],
    [{}, { any: 'thing' }, true],
  ])('selector %j matches %j: %s', (selector, labels, expected) => {
    expect(selectorMatches(selector, labels)).toBe(expected);
  });
});

describe('TCP port allocation', () => {
  it('takes the lowest free ports in the range, oldest service first', () => {
    const plans = planClaims(
      [gw('eu')],
      [
        xsvc('b', 'second', '2026-01-02T00:00:00Z', { routes: [{ protocol: 'TCP', backend: { port: 5432 } }] }),
        xsvc('a', 'first', '2026-01-01T00:00:00Z', {
          routes: [{ protocol: 'TCP', backend: { port: 6379 } }, { protocol: 'TCP' }],
        }),
      ],
      namespaces,
    );
    expect(plans.get('a/first')!.gateways[0]!.tcp).toEqual([
      { route: 0, port: 20000, backendPort: 6379 },
      { route: 1, port: 20001, backendPort: 8080 },
    ]);
    expect(plans.get('b/second')!.gateways[0]!.tcp).toEqual([{ route: 0, port: 20002, backendPort: 5432 }]);
  });

  it('keeps ports recorded in status across restarts, even when an older service arrives later', () => {
    const recorded = {
      endpoints: [{ gateway: 'eu', tcp: [{ address: '127.0.10.1', port: 20000, backendPort: 6379 }] }],
    };
    const plans = planClaims(
      [gw('eu')],
      [
        xsvc(
          'b',
          'existing',
          '2026-01-02T00:00:00Z',
          { routes: [{ protocol: 'TCP', backend: { port: 6379 } }] },
          recorded,
        ),
        xsvc('a', 'newcomer', '2026-01-01T00:00:00Z', { routes: [{ protocol: 'TCP', backend: { port: 5432 } }] }),
      ],
      namespaces,
    );
    expect(plans.get('b/existing')!.gateways[0]!.tcp).toEqual([{ route: 0, port: 20000, backendPort: 6379 }]);
    expect(plans.get('a/newcomer')!.gateways[0]!.tcp).toEqual([{ route: 0, port: 20001, backendPort: 5432 }]);
  });

  it('reports an exhausted range', () => {
    const small = gw('eu', { listeners: { tcp: { portRange: { from: 20000, to: 20000 } }, tunnel: { port: 8443 } } });
    const plans = planClaims(
      [small],
      [
        xsvc('a', 'one', '2026-01-01T00:00:00Z', { routes: [{ protocol: 'TCP' }] }),
        xsvc('a', 'two', '2026-01-02T00:00:00Z', { routes: [{ protocol: 'TCP' }] }),
      ],
      namespaces,
    );
    expect(plans.get('a/two')!.gateways[0]).toMatchObject({ accepted: false, reason: 'PortsExhausted', tcp: [] });
  });

  it('cannot serve TCP on a gateway without a tcp listener', () => {
    const plans = planClaims(
      [gw('eu', { listeners: { http: { port: 80 }, tunnel: { port: 8443 } } })],
      [xsvc('a', 's', 't', { routes: [{ protocol: 'TCP' }] })],
      namespaces,
    );
    expect(plans.get('a/s')!.gateways[0]).toMatchObject({ accepted: false, reason: 'PortsExhausted' });
  });
});

describe('agent route matching', () => {
  it('scopes TCP routes to their gateway', async () => {
    const { compileRoutes, matchRoute } = await import('../../src/agent/routes.ts');
    const routes = compileRoutes(
      [
        { protocol: 'tcp', port: 20000, backend: '127.0.0.1:6379', gateway: 'eu' },
        { protocol: 'tcp', port: 20000, backend: '127.0.0.1:5432', gateway: 'us' },
        { protocol: 'http', hostname: '*.example.com', backend: '127.0.0.1:8080' },
      ],
      'none',
    );
    const open = { protocol: 'tcp' as const, hostname: '', port: 20000 };
    expect(matchRoute(routes, open, 'eu')?.backend.port).toBe(6379);
    expect(matchRoute(routes, open, 'us')?.backend.port).toBe(5432);
    expect(matchRoute(routes, open, 'asia')).toBeUndefined();
    expect(matchRoute(routes, { protocol: 'http', hostname: 'a.example.com', port: 80 }, 'eu')?.backend.port).toBe(
      8080,
    );
  });
});
