/**
 * The webhook's own TLS: a CA and a serving certificate kept in a Secret of the controller's
 * namespace (created once by whichever replica gets there first; the serving certificate is
 * renewed at two thirds of its life), and the CA written into the MutatingWebhookConfiguration's
 * `caBundle` so the API server trusts the webhook. No cert-manager needed.
 */
import { X509Certificate } from 'node:crypto';
import type { V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import { createCA, issueCertificate, type KeyPairPem } from '../../pki/issue.ts';
import { renewalTime } from '../../pki/lifetime.ts';
import { secretText } from '../runtime/apply.ts';
import { ownedBy, withOwner } from '../runtime/installation.ts';
import { statusCode, type KubeClient } from '../runtime/kube.ts';

const DAY = 24 * 3600_000;
export const WEBHOOK_SECRET = 'webgw-webhook-tls';

export interface WebhookTls {
  ca: KeyPairPem;
  serving: KeyPairPem;
}

/**
 * Reads, creates or renews the webhook TLS Secret; `hosts` are the names the API server dials;
 * `owner` (runtime/installation.ts) removes the Secret with the installation.
 */
export async function ensureWebhookTls(
  client: KubeClient,
  namespace: string,
  hosts: readonly string[],
  now: Date,
  owner?: V1OwnerReference,
): Promise<WebhookTls> {
  let secret: V1Secret | undefined;
  try {
    secret = await client.core.readNamespacedSecret({ name: WEBHOOK_SECRET, namespace });
  } catch (err) {
    if (statusCode(err) !== 404) throw err;
  }
  const caCert = secret && secretText(secret, 'ca.crt');
  const caKey = secret && secretText(secret, 'ca.key');
  const ca =
    caCert && caKey
      ? { certPem: caCert, keyPem: caKey }
      : createCA('webgw webhook CA', { notAfter: new Date(now.getTime() + 3650 * DAY) });
  const tlsCert = secret && secretText(secret, 'tls.crt');
  const tlsKey = secret && secretText(secret, 'tls.key');
  const sameHosts = tlsCert
    ? hosts.every((h) => (new X509Certificate(tlsCert).subjectAltName ?? '').includes(h))
    : false;
  const current =
    tlsCert && tlsKey && sameHosts && renewalTime(tlsCert) > now ? { certPem: tlsCert, keyPem: tlsKey } : undefined;
  if (secret && caCert && current && ownedBy(secret.metadata, owner)) return { ca, serving: current };
  const serving =
    current ??
    issueCertificate(
      ca,
      { commonName: hosts[0] ?? 'webgw-webhook', usage: 'server', hosts },
      { notAfter: new Date(now.getTime() + 365 * DAY) },
    );
  const body = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: {
      name: WEBHOOK_SECRET,
      namespace,
      labels: { 'app.kubernetes.io/name': 'webgw', 'app.kubernetes.io/component': 'webhook' },
      ownerReferences: withOwner(secret?.metadata, owner),
    },
    stringData: { 'ca.crt': ca.certPem, 'ca.key': ca.keyPem, 'tls.crt': serving.certPem, 'tls.key': serving.keyPem },
  };
  if (secret) {
    await client.apply(body);
  } else {
    try {
      await client.create(body);
    } catch (err) {
      // Another replica created it first: use theirs.
      if (statusCode(err) === 409) return ensureWebhookTls(client, namespace, hosts, now, owner);
      throw err;
    }
  }
  return { ca, serving };
}

/** Writes the CA into every webhook of the configuration, when it is not there yet. */
export async function ensureCaBundle(client: KubeClient, configurationName: string, caPem: string): Promise<boolean> {
  let config;
  try {
    config = await client.admission.readMutatingWebhookConfiguration({ name: configurationName });
  } catch (err) {
    if (statusCode(err) === 404) return false; // not installed (yet): nothing to do
    throw err;
  }
  const bundle = Buffer.from(caPem).toString('base64');
  const webhooks = config.webhooks ?? [];
  if (webhooks.every((w) => w.clientConfig.caBundle === bundle)) return false;
  // A JSON patch of the caBundle fields only: the rest of the configuration stays the installer's
  // (Helm, GitOps), and we never become a manager of it.
  await client.patchWebhookCaBundles(
    configurationName,
    webhooks.map((w, i) => ({ index: i, add: w.clientConfig.caBundle === undefined })),
    bundle,
  );
  return true;
}
