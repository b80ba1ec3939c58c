/** The messages between the controller's event loop and the webhook's thread (thread.ts, worker.ts). */
import type { ExposedService } from '../../crds/types.ts';

/** What the worker is started with. */
export interface WebhookWorkerData {
  address: string;
  port: number;
  certPem: string;
  keyPem: string;
  image: string;
}

export type ToWebhookWorker =
  /** ExposedServices as cached now (`services`), and those gone (`deleted`, namespace/name). */
  | { type: 'services'; services: ExposedService[]; deleted: string[] }
  | { type: 'certificate'; certPem: string; keyPem: string }
  | { type: 'close' };

export type FromWebhookWorker =
  | { type: 'listening'; port: number }
  | { type: 'failed'; message: string }
  | { type: 'injected'; namespace: string; service: string }
  | { type: 'closed' };
