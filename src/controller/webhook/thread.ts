/**
 * The injection webhook on a thread of its own (worker.ts): the controller's event loop sends it
 * the ExposedServices as they change and hears back which pods got the agent. Admissions are then
 * answered however busy reconciling is. A thread that dies is started again (same port, the
 * services sent afresh); pods created meanwhile meet the configuration's failurePolicy.
 */
import { Worker } from 'node:worker_threads';
import type { Timer } from '../../common/clock.ts';
import { systemClock, type Clock } from '../../common/clock.ts';
import { WebgwError } from '../../common/errors.ts';
import { Lifecycle } from '../../common/lifecycle.ts';
import type { Logger } from '../../common/log.ts';
import type { ExposedService } from '../../crds/types.ts';
import type { FromWebhookWorker, ToWebhookWorker, WebhookWorkerData } from './thread-protocol.ts';

export interface WebhookThreadOptions extends WebhookWorkerData {
  /** worker.ts, or the worker.js it is compiled to (the caller knows which it runs). */
  workerFile: string;
  /** Every ExposedService as cached now: sent when the thread starts. */
  snapshot: () => readonly ExposedService[];
  onInjected?: (namespace: string, service: string) => void;
  logger: Logger;
  clock?: Clock;
}

const RESTART_AFTER_MS = 1000;
const CLOSE_DEADLINE_MS = 5000;
/** The thread's own heap: a copy of the services (5,000: ~20 MiB) and the requests in flight. */
const WORKER_HEAP_MB = 256;

export class WebhookThread {
  private readonly opts: WebhookThreadOptions;
  private readonly clock: Clock;
  private readonly life = new Lifecycle();
  private worker: Worker | undefined;
  private port: number;
  private certificate: { certPem: string; keyPem: string };
  private changed = new Map<string, ExposedService | undefined>();
  private flushing = false;
  private restart: Timer | undefined;

  constructor(opts: WebhookThreadOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.port = opts.port;
    this.certificate = { certPem: opts.certPem, keyPem: opts.keyPem };
  }

  /** Resolves with the port once the thread listens. */
  async start(): Promise<{ port: number }> {
    const worker = new Worker(this.opts.workerFile, {
      workerData: {
        address: this.opts.address,
        port: this.port,
        image: this.opts.image,
        ...this.certificate,
      } satisfies WebhookWorkerData,
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
    });
    this.worker = worker;
    this.changed.clear();
    this.send({ type: 'services', services: [...this.opts.snapshot()], deleted: [] });
    const port = await new Promise<number>((resolve, reject) => {
      const early = (err: Error): void => reject(err);
      worker.once('error', early);
      worker.once('exit', (code) => reject(new WebgwError('WEBGW_ERR_WEBHOOK', `webhook thread exited (${code})`)));
      worker.on('message', (m: FromWebhookWorker) => {
        if (m.type === 'listening') {
          worker.off('error', early);
          resolve(m.port);
        } else if (m.type === 'failed') reject(new WebgwError('WEBGW_ERR_WEBHOOK', m.message));
        else if (m.type === 'injected') this.opts.onInjected?.(m.namespace, m.service);
      });
    });
    this.port = port;
    worker.on('error', (err) => this.opts.logger.error('webhook thread failed', { err: err.message }));
    worker.on('exit', () => {
      if (this.worker !== worker || this.life.stopping) return;
      this.opts.logger.error('webhook thread ended; starting it again', { inMs: RESTART_AFTER_MS });
      this.restart = this.clock.setTimeout(() => {
        this.start().catch((err: unknown) =>
          this.opts.logger.error('webhook thread did not start', { err: (err as Error).message }),
        );
      }, RESTART_AFTER_MS);
    });
    return { port };
  }

  /** An ExposedService changed (`service`) or is gone (undefined); sent with the others of this turn. */
  serviceChanged(key: string, service: ExposedService | undefined): void {
    if (!this.worker || this.life.stopping) return;
    this.changed.set(key, service);
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => {
      this.flushing = false;
      const services: ExposedService[] = [];
      const deleted: string[] = [];
      for (const [k, s] of this.changed) {
        if (s) services.push(s);
        else deleted.push(k);
      }
      this.changed = new Map();
      this.send({ type: 'services', services, deleted });
    });
  }

  /** New serving certificate (renewed by the controller); new connections use it. */
  setCertificate(certPem: string, keyPem: string): void {
    this.certificate = { certPem, keyPem };
    this.send({ type: 'certificate', certPem, keyPem });
  }

  close(): Promise<void> {
    return this.life.close(async () => {
      this.restart?.cancel();
      const worker = this.worker;
      if (!worker) return;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      const deadline = this.clock.setTimeout(() => void worker.terminate(), CLOSE_DEADLINE_MS);
      this.send({ type: 'close' });
      await exited;
      deadline.cancel();
    });
  }

  destroy(): void {
    this.life.destroy(() => {
      this.restart?.cancel();
      void this.worker?.terminate();
    });
  }

  private send(m: ToWebhookWorker): void {
    this.worker?.postMessage(m);
  }
}
