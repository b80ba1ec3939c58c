/**
 * The controller benchmark's latency probes: /healthz and an admission review every 100 ms each,
 * the controller's longest event-loop stall every second. They run on a thread of their own: the
 * benchmark's main thread creates thousands of objects and parses a watch of all of them, and a
 * probe timed on that loop would measure the benchmark's stalls, not the controller's. The
 * probe thread's own event-loop delay is reported with the results, so a reader can tell.
 */
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { request } from 'node:https';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { percentile, sleep } from './controller-probes.ts';

interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export interface MonitorResult {
  healthzMs: Summary;
  webhookMs: Summary;
  eventLoopStallMaxMs: number;
  /** The probe thread's own longest event-loop delay: an upper bound on what it added. */
  probeLoopDelayMaxMs: number;
}

interface MonitorData {
  controllerMonitors: { admin: number; webhook: number };
}

/** Starts the probes on a thread; stop() ends them and returns what they measured. */
export function startMonitors(admin: number, webhook: number): { stop: () => Promise<MonitorResult> } {
  const worker = new Worker(new URL(import.meta.url), {
    workerData: { controllerMonitors: { admin, webhook } } satisfies MonitorData,
  });
  const done = once(worker, 'message') as Promise<[MonitorResult]>;
  return {
    stop: async () => {
      worker.postMessage('stop');
      const [result] = await done;
      await worker.terminate();
      return result;
    },
  };
}

function runMonitors({ admin, webhook }: MonitorData['controllerMonitors']): void {
  const healthz: number[] = [];
  const hook: number[] = [];
  const lagMax: number[] = [];
  const ownDelay = monitorEventLoopDelay({ resolution: 10 });
  ownDelay.enable();
  let running = true;
  const loop = async (everyMs: number, fn: () => Promise<void>): Promise<void> => {
    while (running) {
      const t = Date.now();
      await fn().catch(() => undefined);
      await sleep(Math.max(0, everyMs - (Date.now() - t)));
    }
  };
  const review = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'bench',
      kind: { kind: 'Pod' },
      operation: 'CREATE',
      namespace: 'bench-t0',
      object: {
        metadata: { name: 'p', namespace: 'bench-t0', labels: { app: 'svc-0' } },
        spec: { containers: [{ name: 'app', image: 'app' }] },
      },
    },
  });
  const loops = [
    loop(100, async () => {
      const t = performance.now();
      await httpGet(admin, '/healthz');
      healthz.push(performance.now() - t);
    }),
    loop(100, async () => {
      const t = performance.now();
      await httpsPost(webhook, '/inject', review);
      hook.push(performance.now() - t);
    }),
    loop(1000, async () => {
      const text = (await httpGet(admin, '/metrics')).body;
      const m = /^webgw_controller_nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text);
      if (m) lagMax.push(Number(m[1]) * 1000);
    }),
  ];
  const summary = (xs: number[]): Summary => ({
    n: xs.length,
    p50: percentile(xs, 50),
    p99: percentile(xs, 99),
    max: Math.round(Math.max(0, ...xs) * 10) / 10,
  });
  parentPort!.once('message', () => {
    running = false;
    void Promise.all(loops).then(() => {
      ownDelay.disable();
      parentPort!.postMessage({
        healthzMs: summary(healthz),
        webhookMs: summary(hook),
        eventLoopStallMaxMs: Math.max(0, ...lagMax),
        probeLoopDelayMaxMs: Math.round(ownDelay.max / 1e5) / 10,
      } satisfies MonitorResult);
    });
  });
}

export function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, timeout: 10_000 }, (res) => {
      let body = '';
      res
        .setEncoding('utf8')
        .on('data', (d: string) => {
          body += d;
        })
        .on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req
      .on('timeout', () => req.destroy(new Error('timeout')))
      .on('error', reject)
      .end();
  });
}

/** One admission review on a new connection (TLS handshake included, as the API server's first). */
function httpsPost(port: number, path: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        rejectUnauthorized: false,
        agent: false,
        timeout: 10_000,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        res.resume().on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req
      .on('timeout', () => req.destroy(new Error('timeout')))
      .on('error', reject)
      .end(body);
  });
}

if (!isMainThread && (workerData as Partial<MonitorData> | null)?.controllerMonitors) {
  runMonitors((workerData as MonitorData).controllerMonitors);
}
