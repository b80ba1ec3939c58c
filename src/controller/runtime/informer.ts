/**
 * A watched, cached resource. client-node's informer lists, watches and relists on 410 Gone by
 * itself; on any other error it stops, and we restart it with jittered exponential backoff
 * (so an API server restart is survived). Events only enqueue keys (level-based control).
 */
import {
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
} from '@kubernetes/client-node';
import { Backoff } from '../../common/backoff.ts';
import { systemClock, type Clock, type Timer } from '../../common/clock.ts';
import { describeError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';

export interface WatchedOptions<T extends KubernetesObject> {
  kc: KubeConfig;
  /** API path to watch, e.g. /api/v1/namespaces/webgw-system/pods. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  logger: Logger;
  clock?: Clock;
}

export class Watched<T extends KubernetesObject> {
  private readonly informer: Informer<T> & ObjectCache<T>;
  private readonly backoff: Backoff;
  private readonly clock: Clock;
  private readonly log: Logger;
  private retry: Timer | undefined;
  private stopped = false;
  private synced = false;
  private failedSinceStart = false;
  private changeCount = 0;

  constructor(opts: WatchedOptions<T>) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger.child({ watch: opts.path });
    this.backoff = new Backoff({ initialMs: 200, maxMs: 10_000 });
    this.informer = makeInformer(opts.kc, opts.path, opts.list, opts.labelSelector);
    for (const verb of ['add', 'update', 'delete'] as const) this.informer.on(verb, () => this.changeCount++);
    this.informer.on('error', (err) => {
      this.failedSinceStart = true;
      if (this.stopped) return;
      const delay = this.backoff.next();
      this.log.warn('watch failed; restarting', { inMs: delay, err: describeError(err) });
      this.retry = this.clock.setTimeout(() => void this.start(), delay);
    });
  }

  /** Calls `handler` with every object added, changed or deleted (register before start()). */
  onEvent(handler: (obj: T) => void): void {
    for (const verb of ['add', 'update', 'delete'] as const) this.informer.on(verb, handler);
  }

  /** Grows with every object added, changed or deleted: equal counts, same cache contents. */
  get changes(): number {
    return this.changeCount;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  async start(): Promise<void> {
    if (this.stopped) return;
    this.failedSinceStart = false;
    try {
      await this.informer.start();
      // start() resolves once listed and watching, or after reporting an 'error'.
      if (!this.failedSinceStart) {
        this.synced = true;
        this.backoff.reset();
      }
    } catch (err) {
      // start() rejects when the first list fails; the 'error' handler schedules the retry.
      this.log.debug('initial list failed', { err: describeError(err) });
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.retry?.cancel();
    await this.informer.stop();
  }

  list(namespace?: string): readonly T[] {
    return this.informer.list(namespace);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.informer.get(name, namespace);
  }
}
