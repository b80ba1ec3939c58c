/**
 * A hostname stays with its namespace when the ExposedService holding it is re-created (issue 12):
 * the controller's reservations outlive the object for RELEASE_AFTER_MS.
 */
import { planClaims } from '../../src/controller/exposedservice/claims.ts';
import {
  RELEASE_AFTER_MS,
  nextReservations,
  parseReservations,
  planReservations,
  renderReservations,
  reservedNamespaces,
  type Reservations,
} from '../../src/controller/trust/reservations.ts';
import type { ExposedService, Gateway } from '../../src/crds/types.ts';

const gateway: Gateway = {
  apiVersion: 'webgw.io/v1alpha1',
  kind: 'Gateway',
  metadata: { name: 'eu' },
  spec: { placement: {}, listeners: { tunnel: { port: 8443 } }, hostnamePolicy: { external: 'Allowed' } },
};
const namespaces = [
  { name: 'shop', labels: {} },
  { name: 'evil', labels: {} },
];
const xsvc = (ns: string, name: string, created: string): ExposedService => ({
  apiVersion: 'webgw.io/v1alpha1',
  kind: 'ExposedService',
  metadata: { name, namespace: ns, creationTimestamp: created },
  spec: {
    gateways: [{ name: 'eu' }],
    mode: 'Sidecar',
    selector: {},
    backend: { port: 80 },
    routes: [{ protocol: 'HTTP', hostnames: ['shop.example'] }],
    proxyProtocol: 'None',
  },
});

/** One controller pass: plan with the reservations, then the reservations after it. */
function pass(services: ExposedService[], reservations: Reservations, now: Date) {
  const plans = planClaims([gateway], services, namespaces, {
    reserved: reservedNamespaces(new Map([['eu', reservations]])),
  });
  return { plans, ...nextReservations('eu', reservations, plans, now) };
}

describe('hostname reservations', () => {
  const t0 = new Date('2026-11-29T10:00:00Z');
  const web = xsvc('shop', 'web', '2026-01-01T00:00:00Z');
  const squatter = xsvc('evil', 'squat', '2026-06-01T00:00:00Z'); // waits for the name

  it('keeps a name with its namespace across a re-creation, and releases it after the grace period', () => {
    let state = pass([web, squatter], new Map(), t0);
    expect(state.plans.get('shop/web')!.gateways[0]!.http).toEqual(['shop.example']);
    expect(state.reservations.get('shop.example')).toEqual({ namespace: 'shop' });

    // shop/web is deleted: the squatter, now the oldest claimant, still does not get the name.
    state = pass([squatter], state.reservations, new Date(t0.getTime() + 1000));
    expect(state.plans.get('evil/squat')!.gateways[0]).toMatchObject({
      http: [],
      conflicts: [{ hostname: 'shop.example', holder: 'namespace shop (reserved)' }],
    });
    expect(state.reservations.get('shop.example')).toMatchObject({
      namespace: 'shop',
      releasedAt: '2026-11-29T10:00:01.000Z',
    });
    expect(state.nextExpiry?.getTime()).toBe(t0.getTime() + 1000 + RELEASE_AFTER_MS);

    // Re-created (younger than the squatter now): the name is its namespace's again.
    const again = xsvc('shop', 'web', '2026-11-29T10:00:05Z');
    state = pass([squatter, again], state.reservations, new Date(t0.getTime() + 5000));
    expect(state.plans.get('shop/web')!.gateways[0]!.http).toEqual(['shop.example']);
    expect(state.reservations.get('shop.example')).toEqual({ namespace: 'shop' });

    // Gone for good: after the grace period the name is free for the next claimant.
    state = pass([squatter], state.reservations, new Date(t0.getTime() + 6000));
    state = pass([squatter], state.reservations, new Date(t0.getTime() + 6000 + RELEASE_AFTER_MS));
    state = pass([squatter], state.reservations, new Date(t0.getTime() + 6001 + RELEASE_AFTER_MS));
    expect(state.plans.get('evil/squat')!.gateways[0]!.http).toEqual(['shop.example']);
    expect(state.reservations.get('shop.example')).toEqual({ namespace: 'evil' });
  });

  it('keeps a TCP port with its route across a re-creation; a forged status cannot take a reserved port', () => {
    const tcpGw: Gateway = {
      ...gateway,
      spec: { ...gateway.spec, listeners: { tcp: { portRange: { from: 20000, to: 20009 } }, tunnel: { port: 8443 } } },
    };
    const tcp = (ns: string, name: string, created: string, status?: ExposedService['status']): ExposedService => ({
      ...xsvc(ns, name, created),
      spec: { ...xsvc(ns, name, created).spec, routes: [{ protocol: 'TCP' }] },
      ...(status ? { status } : {}),
    });
    const plan = (services: ExposedService[], r: Reservations) =>
      planClaims([tcpGw], services, namespaces, planReservations(new Map([['eu', r]])));
    const redis = tcp('shop', 'redis', '2026-01-02T00:00:00Z');
    let plans = plan([redis], new Map());
    expect(plans.get('shop/redis')!.gateways[0]!.tcp[0]!.port).toBe(20000);
    let r = nextReservations('eu', new Map(), plans, t0).reservations;
    expect(r.get('tcp/20000')).toEqual({ namespace: 'shop', holder: 'shop/redis#0' });
    // Deleted; an older service whose status (written by its tenant) names the port asks for it.
    const forger = tcp('evil', 'forger', '2026-01-01T00:00:00Z', {
      endpoints: [{ gateway: 'eu', tcp: [{ port: 20000, backendPort: 80 }] }],
    });
    plans = plan([forger], r);
    expect(plans.get('evil/forger')!.gateways[0]!.tcp[0]!.port).toBe(20001);
    r = nextReservations('eu', r, plans, new Date(t0.getTime() + 1000)).reservations;
    // Re-created: the same port again, whatever its status says.
    plans = plan([forger, tcp('shop', 'redis', '2026-11-29T10:00:05Z')], r);
    expect(plans.get('shop/redis')!.gateways[0]!.tcp[0]!.port).toBe(20000);
    expect(reservedNamespaces(new Map([['eu', r]])).get('eu')!.size).toBe(0); // ports are not hostnames
  });

  it('round-trips through its ConfigMap text and drops lines it cannot read', () => {
    const r = new Map<string, { namespace: string; holder?: string; releasedAt?: string }>([
      ['b.example', { namespace: 'shop', releasedAt: '2026-11-29T10:00:00.000Z' }],
      ['a.example', { namespace: 'web' }],
      ['tcp/20001', { namespace: 'shop', holder: 'shop/redis#0' }],
      ['tcp/20002', { namespace: 'shop', holder: 'shop/db#1', releasedAt: '2026-11-29T10:00:00.000Z' }],
    ]);
    expect(parseReservations(renderReservations(r))).toEqual(r);
    expect(parseReservations('# comment\nonly-a-name\na.example ns\nx y z w\n')).toEqual(
      new Map([['a.example', { namespace: 'ns' }]]),
    );
  });
});
