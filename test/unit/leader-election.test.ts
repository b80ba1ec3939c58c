/**
 * Leader election on a Lease (controller/runtime/leader-election.ts), on the fake clock against
 * an in-memory Lease that keeps resourceVersions as the API server does (a write with a stale one
 * is a 409): one leader at a time, a takeover only after leaseDuration without renewal, a leader
 * that cannot renew steps down within renewDeadline, and stop() hands over at once.
 */
import type { V1Lease } from '@kubernetes/client-node';
import { LeaderElector } from '../../src/controller/runtime/leader-election.ts';
import type { KubeClient } from '../../src/controller/runtime/kube.ts';
import { createLogger } from '../../src/common/log.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const conflict = (): Error => Object.assign(new Error('conflict'), { code: 409 });

class LeaseStore {
  lease: V1Lease | undefined;
  private version = 0;
  /** While true, every request fails (an API server that cannot be reached). */
  down = false;
  /** Candidates cut off from the API server. */
  readonly partitioned = new Set<string>();

  client(identity: string): KubeClient {
    const check = (): void => {
      if (this.down || this.partitioned.has(identity))
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    };
    const coordination = {
      readNamespacedLease: async () => {
        check();
        if (!this.lease) throw Object.assign(new Error('not found'), { code: 404 });
        return structuredClone(this.lease);
      },
      createNamespacedLease: async ({ body }: { body: V1Lease }) => {
        check();
        if (this.lease) throw conflict();
        this.lease = {
          ...structuredClone(body),
          metadata: { ...body.metadata, resourceVersion: String(++this.version) },
        };
        return this.lease;
      },
      replaceNamespacedLease: async ({ body }: { body: V1Lease }) => {
        check();
        if (body.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) throw conflict();
        this.lease = {
          ...structuredClone(body),
          metadata: { ...body.metadata, resourceVersion: String(++this.version) },
        };
        return this.lease;
      },
    };
    return { coordination, countLeaseWrite: () => {} } as unknown as KubeClient;
  }
}

const logger = createLogger({}, { level: 'error', sink: () => {} });
const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

function candidate(store: LeaseStore, clock: FakeClock, identity: string) {
  const events: string[] = [];
  const elector = new LeaderElector({
    client: store.client(identity),
    namespace: 'ns',
    name: 'webgw-controller',
    identity,
    clock,
    logger,
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    onStartedLeading: () => events.push('started'),
    onStoppedLeading: () => events.push('stopped'),
  });
  return { elector, events };
}

async function step(clock: FakeClock, ms: number, by = 1000): Promise<void> {
  for (let t = 0; t < ms; t += by) {
    clock.advance(by);
    await settle();
  }
}

describe('LeaderElector', () => {
  it('elects exactly one of two candidates that start together, and keeps it while it renews', async () => {
    const store = new LeaseStore();
    const clock = new FakeClock();
    const a = candidate(store, clock, 'a');
    const b = candidate(store, clock, 'b');
    a.elector.start();
    b.elector.start();
    await settle();
    await step(clock, 60_000);
    expect([a.elector.isLeader, b.elector.isLeader].filter(Boolean)).toHaveLength(1);
    const leader = a.elector.isLeader ? 'a' : 'b';
    expect(store.lease?.spec?.holderIdentity).toBe(leader);
    expect(store.lease?.spec?.leaseTransitions).toBe(0);
    await a.elector.close();
    await b.elector.close();
  });

  it('a standby takes over only after leaseDuration without a renewal', async () => {
    const store = new LeaseStore();
    const clock = new FakeClock();
    const a = candidate(store, clock, 'a');
    a.elector.start();
    await settle();
    expect(a.elector.isLeader).toBe(true);
    // a is cut off from the API server and cannot renew (nor release): b waits out the lease.
    store.partitioned.add('a');
    const b = candidate(store, clock, 'b');
    b.elector.start();
    await settle();
    await step(clock, 14_000);
    expect(b.elector.isLeader).toBe(false);
    await step(clock, 4_000);
    expect(b.elector.isLeader).toBe(true);
    expect(store.lease?.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    expect(a.elector.isLeader).toBe(false); // stepped down at its renew deadline, before b took over
    await b.elector.close();
    await a.elector.close();
  });

  it('a leader that cannot renew steps down within renewDeadline', async () => {
    const store = new LeaseStore();
    const clock = new FakeClock();
    const a = candidate(store, clock, 'a');
    a.elector.start();
    await settle();
    store.down = true;
    await step(clock, 10_000);
    expect(a.elector.isLeader).toBe(true); // not yet past the deadline
    await step(clock, 3_000);
    expect(a.elector.isLeader).toBe(false);
    expect(a.events).toEqual(['started', 'stopped']);
    store.down = false;
    await step(clock, 3_000);
    expect(a.elector.isLeader).toBe(true); // the lease still names it: it renews and leads again
    await a.elector.close();
  });

  it('stop() releases the lease, so a standby leads at its next try', async () => {
    const store = new LeaseStore();
    const clock = new FakeClock();
    const a = candidate(store, clock, 'a');
    const b = candidate(store, clock, 'b');
    a.elector.start();
    await settle();
    b.elector.start();
    await settle();
    await a.elector.close();
    expect(store.lease?.spec?.holderIdentity).toBeUndefined();
    expect(a.events).toEqual(['started', 'stopped']);
    await step(clock, 2_000);
    expect(b.elector.isLeader).toBe(true);
    await b.elector.close();
  });
});
