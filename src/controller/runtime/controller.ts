/**
 * Runs a reconcile function over a work queue with a fixed number of workers: a key is taken,
 * reconciled, and either forgotten (success), requeued after the time it asked for, or retried
 * with per-key backoff (failure). Reconciles are counted and timed for /metrics.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { describeError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import { nextTurn } from './loop-turns.ts';
import { WorkQueue } from './work-queue.ts';

export interface ReconcileResult {
  requeueAfterMs?: number;
}

export interface ControllerMetrics {
  reconciles: Counter<'controller' | 'result'>;
  duration: Histogram<'controller'>;
  depth: Gauge<'controller'>;
}

export function createControllerMetrics(registry: Registry): ControllerMetrics {
  const registers = [registry];
  return {
    reconciles: new Counter({
      name: 'webgw_controller_reconcile_total',
      help: 'Reconciles by controller and result',
      labelNames: ['controller', 'result'],
      registers,
    }),
    duration: new Histogram({
      name: 'webgw_controller_reconcile_duration_seconds',
      help: 'Reconcile duration',
      labelNames: ['controller'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    }),
    depth: new Gauge({
      name: 'webgw_controller_queue_depth',
      help: 'Keys waiting in the work queue',
      labelNames: ['controller'],
      registers,
    }),
  };
}

export interface ControllerOptions {
  name: string;
  reconcile: (key: string) => Promise<ReconcileResult>;
  workers: number;
  metrics: ControllerMetrics;
  logger: Logger;
  queue?: WorkQueue;
}

export class Controller {
  private queue: WorkQueue;
  private readonly opts: ControllerOptions;
  private running: Promise<void>[] = [];

  constructor(opts: ControllerOptions) {
    this.opts = opts;
    this.queue = opts.queue ?? new WorkQueue();
  }

  enqueue(key: string): void {
    this.queue.add(key);
    this.opts.metrics.depth.set({ controller: this.opts.name }, this.queue.depth);
  }

  /** Starts the workers; after pause() a new queue starts empty (callers enqueue everything). */
  start(): void {
    if (this.queue.isClosed) this.queue = new WorkQueue();
    for (let i = 0; i < this.opts.workers; i++) this.running.push(this.worker());
  }

  /** Hands out no more keys and waits for the reconciles running (leadership lost, or shutdown). */
  async pause(): Promise<void> {
    this.queue.close();
    await Promise.all(this.running);
    this.running = [];
  }

  private async worker(): Promise<void> {
    const { name, metrics, logger } = this.opts;
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      metrics.depth.set({ controller: name }, this.queue.depth);
      const end = metrics.duration.startTimer({ controller: name });
      try {
        const result = await this.opts.reconcile(key);
        this.queue.forget(key);
        metrics.reconciles.inc({ controller: name, result: 'success' });
        if (result.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        const delay = this.queue.addRateLimited(key);
        metrics.reconciles.inc({ controller: name, result: 'error' });
        logger.warn('reconcile failed; will retry', {
          controller: name,
          key,
          retryInMs: delay,
          err: describeError(err),
        });
      } finally {
        end();
        this.queue.done(key);
      }
      // A reconcile with nothing to write awaits nothing real: without this, a worker would run
      // a queue of them as one task and starve the probes (issue 15: 1.5 s stalls); and workers
      // take turns with every other controller's, one step per turn of the loop (loop-turns.ts).
      await nextTurn();
    }
  }
}
