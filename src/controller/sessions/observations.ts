/**
 * What the controller last read from each gateway replica's session table, and the views the
 * statuses are written from. Pure: the probe (probe.ts) feeds readings in; reconcilers read
 * views. The views change only when something a status shows changed (round-trip times move
 * only when they halve or double), so a steady data plane writes nothing.
 */
import type { ReportedSession, SessionReport } from '../../common/session-report.ts';

/** One replica's answer (or failure) in one probe round. */
export interface ReplicaReading {
  /** The proxy pod. */
  pod: string;
  address: string;
  reachable: boolean;
  /** Why it was not reachable. */
  error?: string;
  report?: SessionReport;
}

/** One replica as an ExposedService's status shows it. */
export interface ReplicaSessions {
  name: string;
  /** Agent sessions of this service connected to the replica (draining ones not counted). */
  sessions: number;
  /** Since when the oldest of them is connected. */
  since?: string;
  /** The slowest of their tunnels' round trips, in whole milliseconds (steadyRtt). */
  rttMilliseconds?: number;
  /** False when the controller could not read the replica's session table. */
  reachable: boolean;
}

/** One replica as its Gateway's status shows it. */
export interface ProxyReplicaStatus {
  name: string;
  address: string;
  reachable: boolean;
  sessions: number;
  routes: number;
  message?: string;
}

/**
 * The reported round trip stays until the measured one (a single PING's) is off by more than
 * half or double plus RTT_SLACK_MS: a garbage collection or a busy moment is not news, a link
 * that went from 1 ms to 200 ms is.
 */
export const RTT_SLACK_MS = 10;

export function steadyRtt(previous: number | undefined, measured: number | undefined): number | undefined {
  if (measured === undefined) return previous;
  const next = Math.max(1, Math.ceil(measured));
  if (previous === undefined) return next;
  return next > previous * 2 + RTT_SLACK_MS || next < previous / 2 - RTT_SLACK_MS ? next : previous;
}

/**
 * The readings of one gateway, kept between rounds: per replica and identity, the round trip
 * last shown (for steadyRtt).
 */
export class GatewayObservation {
  readonly gateway: string;
  private replicas: ReplicaReading[] = [];
  private readonly shownRtt = new Map<string, number>();
  /** identity → replica → sessions of that identity there. */
  private byIdentity = new Map<string, Map<string, ReportedSession[]>>();

  constructor(gateway: string) {
    this.gateway = gateway;
  }

  /**
   * Takes a round's readings. Returns the identities whose view changed, whether the gateway's
   * own view changed, and whether its replicas did (which or their reachability: then every
   * service's view of the gateway changed).
   */
  update(readings: readonly ReplicaReading[]): { identities: Set<string>; gateway: boolean; replicas: boolean } {
    const beforeGateway = JSON.stringify(this.proxies());
    const beforeReplicas = this.replicaDigest();
    const before = new Map([...this.byIdentity.keys()].map((id) => [id, JSON.stringify(this.forIdentity(id))]));
    this.replicas = [...readings].sort((a, b) => a.pod.localeCompare(b.pod));
    this.byIdentity = new Map();
    for (const r of this.replicas) {
      for (const s of r.report?.sessions ?? []) {
        if (s.draining) continue;
        const perReplica = this.byIdentity.get(s.identity) ?? new Map<string, ReportedSession[]>();
        perReplica.set(r.pod, [...(perReplica.get(r.pod) ?? []), s]);
        this.byIdentity.set(s.identity, perReplica);
      }
    }
    const changed = new Set<string>();
    for (const id of new Set([...before.keys(), ...this.byIdentity.keys()])) {
      if (before.get(id) !== JSON.stringify(this.forIdentity(id, true))) changed.add(id);
    }
    for (const key of [...this.shownRtt.keys()]) {
      const [id, pod] = key.split('\n') as [string, string];
      if (!this.byIdentity.get(id)?.has(pod)) this.shownRtt.delete(key);
    }
    return {
      identities: changed,
      gateway: beforeGateway !== JSON.stringify(this.proxies()),
      replicas: beforeReplicas !== this.replicaDigest(),
    };
  }

  private replicaDigest(): string {
    return this.replicas.map((r) => `${r.pod} ${r.reachable}`).join('\n');
  }

  /** Every replica of the last round, and this identity's sessions on each. */
  forIdentity(identity: string, settle = false): ReplicaSessions[] {
    const perReplica = this.byIdentity.get(identity);
    return this.replicas.map((r) => {
      const sessions = perReplica?.get(r.pod) ?? [];
      if (sessions.length === 0) return { name: r.pod, sessions: 0, reachable: r.reachable };
      const since = sessions.map((s) => s.since).sort()[0];
      const measured = sessions.reduce<number | undefined>(
        (m, s) => (s.rttMs === undefined ? m : Math.max(m ?? 0, s.rttMs)),
        undefined,
      );
      const key = `${identity}\n${r.pod}`;
      const rtt = settle
        ? steadyRtt(this.shownRtt.get(key), measured)
        : (this.shownRtt.get(key) ?? steadyRtt(undefined, measured));
      if (settle && rtt !== undefined) this.shownRtt.set(key, rtt);
      return {
        name: r.pod,
        sessions: sessions.length,
        ...(since ? { since } : {}),
        ...(rtt === undefined ? {} : { rttMilliseconds: rtt }),
        reachable: r.reachable,
      };
    });
  }

  proxies(): ProxyReplicaStatus[] {
    return this.replicas.map((r) => ({
      name: r.pod,
      address: r.address,
      reachable: r.reachable,
      sessions: r.report?.sessions.length ?? 0,
      routes: r.report?.routes ?? 0,
      ...(r.error ? { message: r.error } : {}),
    }));
  }
}
