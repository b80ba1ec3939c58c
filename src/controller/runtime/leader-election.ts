/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does: the
 * holder renews every `retryPeriod`; another candidate takes the lease once it has not been
 * renewed for `leaseDuration`. Writes use the Lease's resourceVersion, so two candidates can
 * never both win a round. A leader that cannot renew within `renewDeadline` steps down.
 */
import { V1MicroTime, type V1Lease, type V1OwnerReference } from '@kubernetes/client-node';
import type { Clock, Timer } from '../../common/clock.ts';
import { describeError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import { ownedBy, withOwner } from './installation.ts';
import { statusCode, type KubeClient } from './kube.ts';

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  clock: Clock;
  logger: Logger;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  /** The Lease's owner, once known (runtime/installation.ts): uninstalling removes the Lease. */
  owner?: () => V1OwnerReference | undefined;
}

export class LeaderElector {
  private readonly opts: Required<Omit<LeaderElectionOptions, 'onStartedLeading' | 'onStoppedLeading' | 'owner'>> &
    Pick<LeaderElectionOptions, 'onStartedLeading' | 'onStoppedLeading' | 'owner'>;
  private leading = false;
  private lastRenew = 0;
  private timer: Timer | undefined;
  private stopped = false;

  constructor(opts: LeaderElectionOptions) {
    this.opts = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...opts };
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.tick();
  }

  /**
   * Steps down and releases the lease so a standby takes over at once; also when this process
   * had already stepped down (a renewal missed its deadline under load) but the Lease still
   * names it (issue 15: a controller SIGTERMed during a 5,000-service burst left it held).
   */
  async close(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    if (this.leading) this.setLeading(false);
    try {
      const lease = await this.read();
      if (lease?.spec?.holderIdentity === this.opts.identity) {
        lease.spec.holderIdentity = undefined;
        lease.spec.renewTime = undefined;
        this.opts.client.countLeaseWrite();
        await this.opts.client.coordination.replaceNamespacedLease({
          name: this.opts.name,
          namespace: this.opts.namespace,
          body: lease,
        });
      }
    } catch (err) {
      this.opts.logger.warn('could not release the lease; a standby takes over when it expires', {
        err: describeError(err),
      });
    }
  }

  /** Stops now, without releasing the lease: a standby takes over when it expires. */
  destroy(): void {
    this.stopped = true;
    this.timer?.cancel();
    if (this.leading) this.setLeading(false);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const acquired = await this.tryAcquireOrRenew();
      if (acquired) this.lastRenew = this.opts.clock.now();
      if (acquired && !this.leading) this.setLeading(true);
      if (!acquired && this.leading) this.setLeading(false);
    } catch (err) {
      this.opts.logger.warn('lease update failed', { err: describeError(err) });
    }
    if (this.leading && this.opts.clock.now() - this.lastRenew > this.opts.renewDeadlineMs) this.setLeading(false);
    if (!this.stopped) this.timer = this.opts.clock.setTimeout(() => void this.tick(), this.opts.retryPeriodMs);
  }

  private setLeading(leading: boolean): void {
    this.leading = leading;
    this.opts.logger.info(leading ? 'became the leader' : 'stopped leading', {
      lease: `${this.opts.namespace}/${this.opts.name}`,
      identity: this.opts.identity,
    });
    if (leading) this.opts.onStartedLeading();
    else this.opts.onStoppedLeading();
  }

  private async read(): Promise<V1Lease | undefined> {
    try {
      return await this.opts.client.coordination.readNamespacedLease({
        name: this.opts.name,
        namespace: this.opts.namespace,
      });
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.opts.clock.date();
    const microTime = new V1MicroTime(now.getTime());
    const durationSeconds = Math.ceil(this.opts.leaseDurationMs / 1000);
    const lease = await this.read();
    if (!lease) {
      this.opts.client.countLeaseWrite();
      await this.opts.client.coordination.createNamespacedLease({
        namespace: this.opts.namespace,
        body: {
          metadata: {
            name: this.opts.name,
            namespace: this.opts.namespace,
            ownerReferences: withOwner(undefined, this.opts.owner?.()),
          },
          spec: {
            holderIdentity: this.opts.identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: microTime,
            renewTime: microTime,
            leaseTransitions: 0,
          },
        },
      });
      return true;
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity;
    const renewed = spec.renewTime ? new Date(spec.renewTime as unknown as string).getTime() : 0;
    const expired = !holder || now.getTime() - renewed > (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (holder !== this.opts.identity && !expired) return false;
    const takingOver = holder !== this.opts.identity;
    const owner = this.opts.owner?.();
    if (!ownedBy(lease.metadata, owner))
      lease.metadata = { ...lease.metadata, ownerReferences: withOwner(lease.metadata, owner) };
    lease.spec = {
      ...spec,
      holderIdentity: this.opts.identity,
      leaseDurationSeconds: durationSeconds,
      renewTime: microTime,
      ...(takingOver ? { acquireTime: microTime, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    try {
      this.opts.client.countLeaseWrite();
      await this.opts.client.coordination.replaceNamespacedLease({
        name: this.opts.name,
        namespace: this.opts.namespace,
        body: lease,
      });
      return true;
    } catch (err) {
      if (statusCode(err) === 409) return false; // someone else wrote first
      throw err;
    }
  }
}
