/**
 * The mutating admission webhook over HTTPS: AdmissionReview (admission.k8s.io/v1) in, the
 * injector's difference out as a JSON patch. Bodies are bounded and the handler never throws:
 * if injection itself fails, the pod is admitted unchanged with a warning and logged. Whether
 * pods are admitted while the webhook is unreachable is the MutatingWebhookConfiguration's
 * failurePolicy (Ignore keeps workloads starting; Fail keeps them from starting without agent).
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { ExposedService } from '../../crds/types.ts';
import { describeError } from '../../common/errors.ts';
import { Lifecycle } from '../../common/lifecycle.ts';
import type { Logger } from '../../common/log.ts';
import { closeServer, listen } from '../../common/net.ts';
import { injectAgent, injectionPatch, selectingService, type PodLike } from './injector.ts';

export const INJECT_PATH = '/inject';
const MAX_BODY_BYTES = 3 * 1024 * 1024; // the API server's own request limit for objects

export interface AdmissionReview {
  apiVersion: string;
  kind: string;
  request?: { uid: string; kind?: { kind?: string }; namespace?: string; operation?: string; object?: PodLike };
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
}

/** Pure: the response to one review. */
export function admit(
  review: AdmissionReview,
  servicesIn: (namespace: string) => readonly ExposedService[],
  image: string,
): AdmissionResponse {
  const req = review.request;
  if (!req) return { uid: '', allowed: true };
  const pod = req.object;
  if (!pod || req.kind?.kind !== 'Pod' || req.operation !== 'CREATE') return { uid: req.uid, allowed: true };
  const namespace = req.namespace ?? pod.metadata?.namespace ?? '';
  const after = injectAgent(pod, servicesIn(namespace), image);
  if (!after) return { uid: req.uid, allowed: true };
  return {
    uid: req.uid,
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(injectionPatch(pod, after))).toString('base64'),
  };
}

export interface WebhookServerOptions {
  address: string;
  port: number;
  certPem: string;
  keyPem: string;
  image: string;
  servicesIn: (namespace: string) => readonly ExposedService[];
  /** A pod got the agent of this ExposedService (its pods changed: the controller looks again). */
  onInjected?: (namespace: string, service: string) => void;
  logger: Logger;
}

export class WebhookServer {
  private readonly life = new Lifecycle();
  private readonly server: Server;
  private readonly opts: WebhookServerOptions;

  constructor(opts: WebhookServerOptions) {
    this.opts = opts;
    this.server = createServer({ cert: opts.certPem, key: opts.keyPem, minVersion: 'TLSv1.2' }, (req, res) => {
      if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== INJECT_PATH) {
        res.writeHead(404).end();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) {
          res.writeHead(413).end();
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => {
        let review: AdmissionReview;
        try {
          review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AdmissionReview;
        } catch (err) {
          res.writeHead(400, { 'content-type': 'text/plain' }).end(`not an AdmissionReview: ${describeError(err)}\n`);
          return;
        }
        let response: AdmissionResponse;
        try {
          response = admit(review, this.opts.servicesIn, this.opts.image);
          const pod = review.request?.object;
          if (response.patch && pod) {
            const namespace = review.request?.namespace ?? pod.metadata?.namespace ?? '';
            const service = selectingService(pod, this.opts.servicesIn(namespace));
            if (service) this.opts.onInjected?.(namespace, service.metadata.name);
          }
        } catch (err) {
          this.opts.logger.error('injection failed; admitting the pod unchanged', { err: describeError(err) });
          response = {
            uid: review.request?.uid ?? '',
            allowed: true,
            warnings: ['webgw: agent injection failed; the pod runs without its agent'],
          };
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            apiVersion: review.apiVersion ?? 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response,
          }),
        );
      });
    });
    this.server.headersTimeout = 5000;
    this.server.requestTimeout = 10_000;
  }

  /** New serving certificate (renewed by the controller); new connections use it. */
  setCertificate(certPem: string, keyPem: string): void {
    this.server.setSecureContext({ cert: certPem, key: keyPem });
  }

  start(): Promise<AddressInfo> {
    return listen(this.server, this.opts.port, this.opts.address);
  }

  close(): Promise<void> {
    return this.life.close(() => closeServer(this.server));
  }

  destroy(): void {
    this.life.destroy(() => {
      this.server.closeAllConnections();
      this.server.close();
    });
  }
}
