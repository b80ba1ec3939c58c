/**
 * Connector mode: for workloads that cannot take a sidecar, an agent Deployment beside the
 * ExposedService forwards to its Service (`<service>.<namespace>.svc:<port>`, see desired.ts).
 * Same container as the sidecar, as a plain container; two replicas spread over nodes so one
 * node's loss is not an outage; no service-account token at all.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import type { ExposedService } from '../../crds/types.ts';
import { controllerReference } from '../runtime/ownership.ts';
import { credentialSecretName } from './desired.ts';
import { AGENT_CONTAINER, AGENT_VOLUME, agentSidecar } from '../webhook/injector.ts';

export const CONNECTOR_LABEL = 'webgw.io/connector';

/** Connector agents per ExposedService (two, spread over nodes). */
const CONNECTOR_REPLICAS = 2;

export function connectorReplicas(_service: ExposedService): number {
  return CONNECTOR_REPLICAS;
}

export function connectorName(service: string): string {
  return `webgw-connector-${service}`;
}

export function connectorDeployment(service: ExposedService, image: string): V1Deployment {
  const name = service.metadata.name;
  const labels = {
    [CONNECTOR_LABEL]: name,
    'app.kubernetes.io/name': 'webgw',
    'app.kubernetes.io/component': 'connector',
  };
  const { restartPolicy: _sidecarOnly, volumeMounts = [], ...container } = agentSidecar(image);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: connectorName(name),
      namespace: service.metadata.namespace,
      labels,
      ownerReferences: [controllerReference({ kind: 'ExposedService', name, uid: service.metadata.uid })],
    },
    spec: {
      replicas: connectorReplicas(service),
      selector: { matchLabels: { [CONNECTOR_LABEL]: name } },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          // runAsGroup: without it the image's group is lost on a real node (65532 is not in
          // /etc/passwd, so containerd runs the process with gid 0); fsGroup makes the 0440
          // credential files readable by that group (issue 13).
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65532,
            runAsGroup: 65532,
            fsGroup: 65532,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: { [CONNECTOR_LABEL]: name } },
            },
          ],
          containers: [
            { ...container, name: AGENT_CONTAINER, volumeMounts: volumeMounts.filter((m) => m.name === AGENT_VOLUME) },
          ],
          volumes: [{ name: AGENT_VOLUME, secret: { secretName: credentialSecretName(name), defaultMode: 0o440 } }],
        },
      },
    },
  };
}
