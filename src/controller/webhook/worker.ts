/**
 * The webhook's thread (thread.ts starts it): the WebhookServer on its own event loop, over a
 * copy of the ExposedServices that the controller sends. A burst of reconciles on the
 * controller's loop then never delays an admission (issue 15: p99 0.8–1.2 s in one loop).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { describeError } from '../../common/errors.ts';
import { createLogger } from '../../common/log.ts';
import type { ExposedService } from '../../crds/types.ts';
import { WebhookServer } from './server.ts';
import type { FromWebhookWorker, ToWebhookWorker, WebhookWorkerData } from './thread-protocol.ts';

const port = parentPort!;
const post = (m: FromWebhookWorker): void => port.postMessage(m);
const data = workerData as WebhookWorkerData;
/** namespace → name → service. */
const services = new Map<string, Map<string, ExposedService>>();

const server = new WebhookServer({
  ...data,
  servicesIn: (namespace) => [...(services.get(namespace)?.values() ?? [])],
  onInjected: (namespace, service) => post({ type: 'injected', namespace, service }),
  logger: createLogger({ component: 'webhook' }),
});

port.on('message', (m: ToWebhookWorker) => {
  if (m.type === 'services') {
    for (const key of m.deleted) {
      const [namespace, name] = key.split('/') as [string, string];
      services.get(namespace)?.delete(name);
    }
    for (const s of m.services) {
      const namespace = s.metadata.namespace ?? '';
      let inNamespace = services.get(namespace);
      if (!inNamespace) services.set(namespace, (inNamespace = new Map()));
      inNamespace.set(s.metadata.name, s);
    }
  } else if (m.type === 'certificate') {
    server.setCertificate(m.certPem, m.keyPem);
  } else {
    void server.close().then(() => {
      post({ type: 'closed' });
      port.close();
    });
  }
});

server.start().then(
  (address) => post({ type: 'listening', port: address.port }),
  (err: unknown) => post({ type: 'failed', message: describeError(err) }),
);
