/**
 * The sample a farmer and a tenant set up on the real nodes, shared by the tests and by
 * `npm run cluster:up -- --real-nodes`: the chart's values (the image built here, a Gateway on
 * the farmer node) and a tenant's namespace, app Deployment and ExposedService.
 */
import { FARMER_LABEL, IMAGES, WORKER } from './topology.ts';

export const SYSTEM = 'webgw-system';
export const TENANT = 'shop';
export const WEB = 'web.shop.test';
export const DB = 'db.shop.test';
export const TCP_FROM = 20000;

const [repository, tag] = IMAGES.webgw.split(':') as [string, string];

/**
 * Helm values: the local image (never pulled) and one Gateway, `edge`, on the farmer node.
 * `acmeCaPem`: the CA of a private ACME directory the controller may trust (Pebble's).
 */
export function chartValues(opts: { acmeCaPem?: string } = {}): string {
  return `
image: {repository: ${repository}, tag: ${tag}, pullPolicy: Never}
${opts.acmeCaPem ? `controller: {acmeCaBundle: ${JSON.stringify(opts.acmeCaPem)}}` : ''}
gateways:
  - name: edge
    spec:
      placement:
        nodeSelector: {${FARMER_LABEL}: "true"}
        tolerations: [{key: ${FARMER_LABEL}, operator: Exists, effect: NoSchedule}]
      listeners: {http: {port: 80}, https: {port: 443}, tcp: {portRange: {from: ${TCP_FROM}, to: ${TCP_FROM + 9}}}}
      hostnamePolicy: {external: Allowed}   # the sample's names are in no DNS
`;
}

/**
 * The tenant's namespace (injection on), the app's TLS Secret and an ExposedService with an HTTP,
 * a TLS passthrough and a TCP route. Apply before the Deployment: the webhook injects only pods
 * an accepted ExposedService selects.
 */
export function tenantObjects(tls: { certPem: string; keyPem: string }): string {
  return `
apiVersion: v1
kind: Namespace
metadata: {name: ${TENANT}, labels: {webgw.io/injection: enabled}}
---
apiVersion: v1
kind: Secret
metadata: {name: app-tls, namespace: ${TENANT}}
type: kubernetes.io/tls
stringData: {tls.crt: ${JSON.stringify(tls.certPem)}, tls.key: ${JSON.stringify(tls.keyPem)}}
---
apiVersion: webgw.io/v1alpha1
kind: ExposedService
metadata: {name: shop, namespace: ${TENANT}}
spec:
  gateways: [{name: edge}]
  selector: {app: app}
  backend: {port: 8080}
  routes:
    - {protocol: HTTP, hostnames: [${WEB}]}
    - {protocol: TLS, hostnames: [${DB}], backend: {port: 8443}}
    - {protocol: TCP, backend: {port: 9000}}
`;
}

/** The tenant's app (test/nodes/app); `tls` mounts its certificate, `node` pins it to one node. */
export function appDeployment(
  namespace: string,
  replicas: number,
  { tls, node }: { tls: boolean; node?: string },
): string {
  return `
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: ${namespace}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      nodeSelector: {${node ? `kubernetes.io/hostname: ${node}` : ''}}
      automountServiceAccountToken: false
      containers:
        - name: app
          image: ${IMAGES.app}
          imagePullPolicy: Never
          env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
          ports: [{containerPort: 8080}, {containerPort: 8443}, {containerPort: 9000}]
          readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 2}
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
          ${tls ? 'volumeMounts: [{name: tls, mountPath: /tls, readOnly: true}]' : ''}
      ${tls ? 'volumes: [{name: tls, secret: {secretName: app-tls}}]' : ''}
`;
}

export const APP_ON_WORKER = { tls: true, node: WORKER.name };
