/** Helpers for cluster tests: kubectl against the test plane, and webhooks served by the test. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { createCA, issueCertificate } from '../../src/pki/issue.ts';
import { INJECT_PATH } from '../../src/controller/webhook/server.ts';
import { ControlPlane, repoRoot } from './plane.ts';
export { freeWildcardPort } from '../helpers/ports.ts';

/** The webhook thread's entry as the sources run it (the CLI finds it itself). */
export const WEBHOOK_WORKER = join(repoRoot(), 'src/controller/webhook/worker.ts');

export function plane(): ControlPlane {
  const dir = process.env.WEBGW_TEST_CLUSTER_DIR;
  if (!dir) throw new Error('no test control plane: run the cluster tests through Jest (npm run test:cluster)');
  return ControlPlane.load(dir);
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command line tool against the test plane (its kubeconfig first); never throws. */
export function runAgainstPlane(
  program: string,
  args: string[],
  input?: string,
  timeoutMs = 60_000,
): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      program,
      ['--kubeconfig', plane().kubeconfig, ...args],
      { maxBuffer: 16 * 1024 * 1024, timeout: timeoutMs },
      (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) || 1 : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** Like runAgainstPlane, but it must succeed; returns stdout. */
export async function runAgainstPlaneOk(
  program: string,
  args: string[],
  input?: string,
  timeoutMs?: number,
): Promise<string> {
  const r = await runAgainstPlane(program, args, input, timeoutMs);
  if (r.code !== 0) throw new Error(`${program} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export function kubectl(args: string[], input?: string): Promise<KubectlResult> {
  return runAgainstPlane('kubectl', args, input);
}

/** kubectl that must succeed; returns stdout. */
export function kubectlOk(args: string[], input?: string): Promise<string> {
  return runAgainstPlaneOk('kubectl', args, input);
}

export async function eventually<T>(
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface AdmissionReview {
  apiVersion: string;
  kind: string;
  request: { uid: string; object: Record<string, unknown>; namespace?: string; operation: string };
}

export interface TestWebhook {
  url: string;
  caBundle: string;
  server: Server;
  close(): Promise<void>;
}

/**
 * Serves an admission webhook from the test process over HTTPS with its own CA; the API server
 * reaches it by URL (`clientConfig.url`) on loopback.
 */
export async function serveWebhook(
  handler: (review: AdmissionReview) => { allowed: boolean; patch?: unknown[]; message?: string },
): Promise<TestWebhook> {
  const validity = { notAfter: new Date(Date.now() + 3600_000) };
  const ca = createCA('test webhook CA', validity);
  const serving = issueCertificate(ca, { commonName: '127.0.0.1', usage: 'server', hosts: ['127.0.0.1'] }, validity);
  const server = createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString()) as AdmissionReview;
      const answer = handler(review);
      const response: Record<string, unknown> = { uid: review.request.uid, allowed: answer.allowed };
      if (answer.patch) {
        response.patchType = 'JSONPatch';
        response.patch = Buffer.from(JSON.stringify(answer.patch)).toString('base64');
      }
      if (answer.message) response.status = { message: answer.message };
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ apiVersion: review.apiVersion, kind: review.kind, response }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    caBundle: Buffer.from(ca.certPem).toString('base64'),
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A kwok-managed fake node (see kwok-stages.yaml); `externalIp` should be a loopback address. */
export function fakeNode(opts: {
  name: string;
  labels?: Record<string, string>;
  taints?: Array<{ key: string; value: string; effect: string }>;
  externalIp?: string;
}): string {
  const labels = { type: 'kwok', 'kubernetes.io/hostname': opts.name, ...opts.labels };
  return `
apiVersion: v1
kind: Node
metadata:
  name: ${opts.name}
  annotations: {kwok.x-k8s.io/node: fake}
  labels: ${JSON.stringify(labels)}
spec:
  taints: ${JSON.stringify(opts.taints ?? [])}
status:
${opts.externalIp ? `  addresses: [{type: ExternalIP, address: "${opts.externalIp}"}, {type: Hostname, address: ${opts.name}}]\n` : ''}  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
`;
}

/**
 * The webgw CRDs (Established) and the controller's namespace: what most cluster tests start from.
 * Forced: a controller run with --manage-crds (chart tests) may own the CRDs' fields by then.
 */
export async function installCrdsAndNamespace(namespace = 'webgw-system'): Promise<void> {
  await kubectlOk([
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager=webgw-test',
    '-f',
    join(__dirname, '../../charts/webgw/crds'),
  ]);
  await kubectlOk([
    'wait',
    '--for=condition=Established',
    'crd/gateways.webgw.io',
    'crd/exposedservices.webgw.io',
    '--timeout=60s',
  ]);
  await kubectl(['create', 'namespace', namespace]);
}

/**
 * A MutatingWebhookConfiguration for pod injection as an installer ships it: no caBundle (the
 * controller writes it), a URL on loopback because the webhook is served by the test process.
 */
export function injectorConfiguration(opts: {
  name: string;
  port: number;
  namespaceSelector: Record<string, string>;
  failurePolicy?: 'Fail' | 'Ignore';
}): string {
  return `
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: ${opts.name}}
webhooks:
  - name: inject.webgw.io
    clientConfig: {url: "https://127.0.0.1:${opts.port}${INJECT_PATH}"}
    rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}]
    namespaceSelector: {matchLabels: ${JSON.stringify(opts.namespaceSelector)}}
    sideEffects: None
    admissionReviewVersions: [v1]
    failurePolicy: ${opts.failurePolicy ?? 'Fail'}
    reinvocationPolicy: IfNeeded
    timeoutSeconds: 5
`;
}

/** A client that authenticates as a ServiceAccount (a token from the TokenRequest API). */
export async function kubeConfigAs(serviceAccount: string, namespace: string): Promise<KubeConfig> {
  const token = (await kubectlOk(['create', 'token', serviceAccount, '-n', namespace, '--duration=1h'])).trim();
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'test',
        server: plane().apiserverUrl,
        caData: readFileSync(join(plane().dir, 'ca.crt')).toString('base64'),
      },
    ],
    users: [{ name: serviceAccount, token }],
    contexts: [{ name: serviceAccount, cluster: 'test', user: serviceAccount }],
    currentContext: serviceAccount,
  });
  return kc;
}
