/**
 * Kubernetes Events for what a person wants to see in `kubectl describe`: only on changes
 * (a condition flips, a CA is created), never on a steady resync. Events of cluster-scoped
 * objects go to the `default` namespace, as the API server's own do. Failing to record an event
 * is logged and otherwise ignored.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../common/clock.ts';
import { describeError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import type { KubeClient } from './kube.ts';

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  name: string;
  uid?: string;
  namespace?: string;
}

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly clock: Clock;
  private readonly log: Logger;

  constructor(client: KubeClient, clock: Clock, logger: Logger) {
    this.client = client;
    this.clock = clock;
    this.log = logger;
  }

  async emit(involved: InvolvedObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const namespace = involved.namespace ?? 'default';
    const now = this.clock.date();
    try {
      this.client.countEventWrite();
      await this.client.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { name: `${involved.name}.${randomBytes(8).toString('hex')}`, namespace },
          involvedObject: {
            apiVersion: involved.apiVersion,
            kind: involved.kind,
            name: involved.name,
            ...(involved.uid ? { uid: involved.uid } : {}),
            ...(involved.namespace ? { namespace: involved.namespace } : {}),
          },
          type,
          reason,
          message: message.slice(0, 1024),
          source: { component: 'webgw-controller' },
          reportingComponent: 'webgw.io/controller',
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      this.log.debug('could not record an event', { reason, err: describeError(err) });
    }
  }
}
