/**
 * The controller's memory of gateway session tables: which changes are announced (and so
 * written), which are not (round-trip jitter, a steady table), and reports it refuses.
 */
import { parseSessionReport, type ReportedSession } from '../../src/common/session-report.ts';
import { GatewayObservation, steadyRtt, type ReplicaReading } from '../../src/controller/sessions/observations.ts';

const session = (identity: string, rttMs?: number, over: Partial<ReportedSession> = {}): ReportedSession => ({
  identity,
  since: '2026-11-30T10:00:00.000Z',
  draining: false,
  ...(rttMs === undefined ? {} : { rttMs }),
  ...over,
});
const replica = (pod: string, sessions: ReportedSession[], routes = sessions.length): ReplicaReading => ({
  pod,
  address: `198.18.0.${pod.length}`,
  reachable: true,
  report: { sessions, routes },
});

describe('steadyRtt()', () => {
  it.each([
    [undefined, undefined, undefined],
    [undefined, 0.3, 1],
    [undefined, 12.2, 13],
    [1, 0.4, 1],
    [1, 11.9, 1], // within 2×1+10
    [1, 12.5, 13],
    [10, 30, 10],
    [10, 31, 31],
    [40, 11, 40], // above 40/2−10
    [40, 9, 9],
    [7, undefined, 7],
  ])('shown %p, measured %p → %p', (previous, measured, expected) => {
    expect(steadyRtt(previous, measured)).toBe(expected);
  });
});

describe('GatewayObservation', () => {
  it('announces nothing when the same table is read again, or when round trips only jitter', () => {
    const o = new GatewayObservation('eu');
    const first = o.update([replica('eu-a', [session('t/web/1', 0.8), session('t/web/1', 1.1)])]);
    expect(first).toEqual({ identities: new Set(['t/web/1']), gateway: true, replicas: true });
    expect(o.update([replica('eu-a', [session('t/web/1', 1.9), session('t/web/1', 0.5)])])).toEqual({
      identities: new Set(),
      gateway: false,
      replicas: false,
    });
    expect(o.forIdentity('t/web/1')).toEqual([
      { name: 'eu-a', sessions: 2, since: '2026-11-30T10:00:00.000Z', rttMilliseconds: 2, reachable: true },
    ]);
  });

  it('announces the identities whose sessions changed, and the gateway when counts changed', () => {
    const o = new GatewayObservation('eu');
    o.update([replica('eu-a', [session('t/a/1', 1), session('t/b/2', 1)])]);
    const changed = o.update([replica('eu-a', [session('t/a/1', 1), session('t/c/3', 1)])]);
    expect(changed).toEqual({ identities: new Set(['t/b/2', 't/c/3']), gateway: false, replicas: false });
    expect(o.forIdentity('t/b/2')).toEqual([{ name: 'eu-a', sessions: 0, reachable: true }]);
    expect(o.update([replica('eu-a', [session('t/a/1', 1)])]).gateway).toBe(true);
  });

  it('announces a round trip that doubled', () => {
    const o = new GatewayObservation('eu');
    o.update([replica('eu-a', [session('t/a/1', 1)])]);
    expect(o.update([replica('eu-a', [session('t/a/1', 200)])]).identities).toEqual(new Set(['t/a/1']));
    expect(o.forIdentity('t/a/1')[0]!.rttMilliseconds).toBe(200);
  });

  it('does not count draining sessions, and announces every replica that becomes unreachable', () => {
    const o = new GatewayObservation('eu');
    o.update([replica('eu-a', [session('t/a/1', 1)]), replica('eu-b', [session('t/a/1', 1)])]);
    const changed = o.update([
      replica('eu-a', [session('t/a/1', 1, { draining: true })]),
      { pod: 'eu-b', address: '198.18.0.4', reachable: false, error: 'unreachable (ECONNREFUSED)' },
    ]);
    expect(changed.replicas).toBe(true);
    expect(o.forIdentity('t/a/1')).toEqual([
      { name: 'eu-a', sessions: 0, reachable: true },
      { name: 'eu-b', sessions: 0, reachable: false },
    ]);
    expect(o.proxies()).toEqual([
      { name: 'eu-a', address: '198.18.0.4', reachable: true, sessions: 1, routes: 1 },
      {
        name: 'eu-b',
        address: '198.18.0.4',
        reachable: false,
        sessions: 0,
        routes: 0,
        message: 'unreachable (ECONNREFUSED)',
      },
    ]);
  });
});

describe('parseSessionReport()', () => {
  it('reads a well-formed report', () => {
    expect(parseSessionReport(JSON.stringify({ routes: 2, sessions: [session('t/a/1', 1.5)] }))).toEqual({
      routes: 2,
      sessions: [session('t/a/1', 1.5)],
    });
  });
  it.each([
    ['not JSON', '{'],
    ['not an object', '3'],
    ['no sessions', '{"routes":0}'],
    ['routes not a count', '{"routes":-1,"sessions":[]}'],
    [
      'identity with spaces',
      JSON.stringify({ routes: 0, sessions: [{ identity: 'a b', since: '2026-11-30T10:00:00Z' }] }),
    ],
    ['no start', JSON.stringify({ routes: 0, sessions: [{ identity: 'a/b/c' }] })],
    [
      'negative round trip',
      JSON.stringify({ routes: 0, sessions: [{ identity: 'a/b/c', since: '2026-11-30T10:00:00Z', rttMs: -1 }] }),
    ],
    [
      'too many sessions',
      JSON.stringify({ routes: 0, sessions: Array.from({ length: 20_001 }, () => session('a/b/c')) }),
    ],
  ])('refuses %s', (_name, text) => {
    expect(() => parseSessionReport(text)).toThrow(expect.objectContaining({ code: 'WEBGW_ERR_PROTOCOL' }));
  });
});
