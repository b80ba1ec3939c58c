/**
 * The controller as an ACME client (RFC 8555, through acme-client): per Gateway with spec.acme an
 * account (its key in a Secret of the controller's namespace, created once), and per hostname
 * the reconciler asks for an order answered by HTTP-01 on the Gateway's own proxies
 * (responder.ts). The certificate and its key go to a Secret of the controller's namespace
 * (certificates.ts); the Gateway reconciler hands it to the proxies. Orders run in the
 * background, a few at once, each bounded in time; a failed order is retried with exponential
 * backoff, and the failure (the ACME problem) is reported in the Gateway's status, from which
 * the backoff is also resumed after a restart. The same orders, under a Gateway's account, serve
 * TLS routes the agents terminate (agent-orders.ts: TLS-ALPN-01, delivered to the ExposedService
 * reconciler instead of a Secret here): a ChallengeSolver and a deliver per order say how.
 */
import { generateKeyPair } from 'node:crypto';
import { Agent, get as httpsGet } from 'node:https';
import { rootCertificates } from 'node:tls';
import { promisify } from 'node:util';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { Client, axios as acmeHttp, crypto as acmeCrypto, type Authorization } from 'acme-client';
import type { Clock } from '../../common/clock.ts';
import { WebgwError, describeError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import type { AcmeFailureStatus, Gateway } from '../../crds/types.ts';
import { COMPONENT_LABEL, GATEWAY_LABEL } from '../gateway/desired.ts';
import type { KubeClient } from '../runtime/kube.ts';
import { statusCode } from '../runtime/kube.ts';
import { controllerReference } from '../runtime/ownership.ts';
import { secretText } from '../runtime/apply.ts';
import type { GatewayTargets } from '../sessions/probe.ts';
import { ACME_COMPONENT, ACME_HOSTNAME_ANNOTATION, acmeAccountSecretName, acmeSecretName } from './certificates.ts';
import type { ChallengeResponder } from './responder.ts';

const generateEcKey = promisify(generateKeyPair);

export interface AcmeIssuerOptions {
  client: KubeClient;
  namespace: string;
  clock: Clock;
  logger: Logger;
  responder: ChallengeResponder;
  /** The replicas of a Gateway that answer its HTTP-01 challenges (sessions/targets.ts). */
  targetsOf: (gateway: string) => GatewayTargets | undefined;
  /** An order of this Gateway ended (certificate stored, or failed): reconcile it. */
  onChanged: (gateway: string) => void;
  /** CA certificates (PEM) trusted for ACME directories besides the system's: a private step-ca. */
  extraCaPem?: string;
  /** Orders in flight at once, over every Gateway (default 4). */
  concurrency?: number;
  /** Retry delays after a failed order: initial, doubled per failure, up to max. */
  backoff?: { initialMs: number; maxMs: number };
  /** The whole order (account, challenge, finalize, download) gives up after this long. */
  orderTimeoutMs?: number;
}

/** Hostnames waiting for an order, over every Gateway. */
const MAX_QUEUED = 5000;
/** One HTTP request to the ACME server. */
const REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_BACKOFF = { initialMs: 60_000, maxMs: 6 * 3600_000 };
/** After a certificate is stored, the cache may lag the write: the name is not ordered again for this long. */
const STORED_GRACE_MS = 15_000;

/** The ACME account an order runs under: its Gateway's spec.acme. */
interface Account {
  gateway: string;
  uid: string | undefined;
  directoryUrl: string;
  email: string | undefined;
}

/** How one challenge type is answered: made ready before validation, taken back after. */
export interface ChallengeSolver {
  type: 'http-01' | 'tls-alpn-01';
  present(authz: Authorization, token: string, keyAuthorization: string): Promise<void>;
  withdraw(authz: Authorization, token: string): Promise<void>;
}

export interface IssuedPair {
  certPem: string;
  keyPem: string;
}

/** How one name's order is answered and where its pair goes. */
export interface OrderFor {
  solver: ChallengeSolver;
  deliver(pair: IssuedPair): Promise<void>;
  /** The order ended (stored, or failed): reconcile what the scope names. */
  changed(): void;
}

interface Job extends OrderFor {
  /** A Gateway's name, or `namespace/name` of the ExposedService whose agents terminate the name. */
  scope: string;
  account: Account;
  hostname: string;
}

const jobKey = (gateway: string, hostname: string): string => `${gateway}\n${hostname}`;
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export class AcmeIssuer {
  private readonly opts: AcmeIssuerOptions;
  private readonly queue: Job[] = [];
  private readonly pending = new Set<string>();
  private readonly failed = new Map<string, AcmeFailureStatus>();
  private readonly seeded = new Set<string>();
  /** When each name's certificate was last stored (STORED_GRACE_MS). */
  private readonly stored = new Map<string, number>();
  private readonly accounts = new Map<string, { fingerprint: string; client: Promise<Client> }>();
  private running = 0;
  private stopped = false;

  constructor(opts: AcmeIssuerOptions) {
    this.opts = opts;
    // acme-client's HTTP client is one axios instance per process: bounded requests, and the
    // system's CAs plus the farmer's private ones.
    acmeHttp.defaults.timeout = REQUEST_TIMEOUT_MS;
    acmeHttp.defaults.httpsAgent = new Agent({
      keepAlive: true,
      maxSockets: 8,
      ca: [...rootCertificates, ...(opts.extraCaPem ? [opts.extraCaPem] : [])],
    });
    Object.assign((acmeHttp.defaults as { acmeSettings?: object }).acmeSettings ?? {}, {
      retryMaxAttempts: 2,
      retryDefaultDelay: 2,
    });
  }

  /**
   * The failure as a farmer can act on it: the ACME problem as the server stated it; for a
   * transport failure (which acme-client 5.4 turns into a TypeError once its retries are spent)
   * the reason the directory cannot be reached, found by asking it once more.
   */
  private async explain(err: unknown, directoryUrl: string): Promise<string> {
    if (!(err instanceof TypeError)) return describeError(err);
    const agent = acmeHttp.defaults.httpsAgent as Agent;
    const reached = await new Promise<number | string>((resolve) => {
      const req = httpsGet(
        directoryUrl,
        { agent, timeout: 10_000, headers: { 'user-agent': 'webgw-controller' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('timeout', () => {
        resolve('ETIMEDOUT');
        req.destroy();
      });
      req.on('error', (e: Error & { code?: string }) => resolve(e.code ?? e.message));
    });
    return typeof reached === 'number'
      ? `the ACME server at ${directoryUrl} failed a request (its directory answers HTTP ${reached}): ${err.message}`
      : `the ACME server at ${directoryUrl} cannot be reached (${reached})`;
  }

  /**
   * Orders certificates for these hostnames of this Gateway, unless one is queued or in flight,
   * or its last failure's backoff has not passed. `previous`: the failures the Gateway's status
   * shows (the backoff survives a restart of the controller).
   */
  request(gw: Gateway, hostnames: readonly string[], previous: readonly AcmeFailureStatus[] = []): void {
    const gateway = gw.metadata.name;
    const solver = this.http01(gateway);
    this.requestFor(gw, gateway, hostnames, previous, (hostname) => ({
      solver,
      deliver: (pair) => this.store(gw, hostname, pair),
      changed: () => this.opts.onChanged(gateway),
    }));
  }

  /**
   * Orders certificates for these hostnames under the account of `account` (a Gateway with
   * spec.acme), for `scope` (whose status reports the failures; `previous`: those it shows, so
   * the backoff survives a restart), each answered and delivered as `order` says.
   */
  requestFor(
    account: Gateway,
    scope: string,
    hostnames: readonly string[],
    previous: readonly AcmeFailureStatus[],
    order: (hostname: string) => OrderFor,
  ): void {
    if (this.stopped || !account.spec.acme) return;
    this.seed(scope, previous);
    const now = this.opts.clock.date().getTime();
    for (const [key, at] of this.stored) if (at + STORED_GRACE_MS <= now) this.stored.delete(key);
    const acct: Account = {
      gateway: account.metadata.name,
      uid: account.metadata.uid,
      directoryUrl: account.spec.acme.directoryUrl,
      email: account.spec.acme.email,
    };
    for (const hostname of hostnames) {
      const key = jobKey(scope, hostname);
      const failure = this.failed.get(key);
      if (this.pending.has(key) || this.stored.has(key) || (failure && Date.parse(failure.retryAt) > now)) continue;
      if (this.queue.length >= MAX_QUEUED) {
        this.opts.logger.warn('ACME queue full; the name is asked for again at the next reconcile', {
          scope,
          hostname,
          limit: MAX_QUEUED,
        });
        break;
      }
      this.pending.add(key);
      this.queue.push({ ...order(hostname), scope, account: acct, hostname });
    }
    this.pump();
  }

  /**
   * The failures a scope's status shows, taken once per scope and leadership: the backoff a
   * previous leader was in goes on instead of ordering again at once.
   */
  seed(scope: string, previous: readonly AcmeFailureStatus[]): void {
    if (this.stopped || this.seeded.has(scope)) return;
    this.seeded.add(scope);
    for (const f of previous) this.failed.set(jobKey(scope, f.hostname), f);
  }

  /** HTTP-01, answered by every replica of the Gateway (responder.ts). */
  private http01(gateway: string): ChallengeSolver {
    return {
      type: 'http-01',
      present: async (authz, token, keyAuthorization) => {
        const targets = this.opts.targetsOf(gateway);
        if (!targets)
          throw new WebgwError('WEBGW_ERR_ACME', `Gateway ${gateway} has no CA or replica yet to answer the challenge`);
        await this.opts.responder.publish(targets, token, { hostname: authz.identifier.value, keyAuthorization });
      },
      withdraw: async (_authz, token) => {
        const targets = this.opts.targetsOf(gateway);
        if (targets) await this.opts.responder.withdraw(targets, token);
      },
    };
  }

  /** The failures of a scope's orders, for its status; names no longer wanted are forgotten. */
  failures(scope: string, wanted: ReadonlySet<string>): AcmeFailureStatus[] {
    const out: AcmeFailureStatus[] = [];
    for (const [key, f] of this.failed) {
      if (!key.startsWith(`${scope}\n`)) continue;
      if (wanted.has(f.hostname)) out.push(f);
      else this.failed.delete(key);
    }
    return out.sort((a, b) => a.hostname.localeCompare(b.hostname));
  }

  /** True while an order for this name is queued or running. */
  ordering(scope: string, hostname: string): boolean {
    return this.pending.has(jobKey(scope, hostname));
  }

  /** A Gateway (its account client and failures) or an ExposedService (its failures) was deleted. */
  forget(scope: string): void {
    this.accounts.delete(scope);
    this.seeded.delete(scope);
    for (const key of [...this.failed.keys()]) if (key.startsWith(`${scope}\n`)) this.failed.delete(key);
  }

  /** No new orders; those in flight finish but store nothing (a new leader orders again). */
  pause(): void {
    this.stopped = true;
    this.queue.length = 0;
    this.pending.clear();
  }

  /** Takes orders (this process leads); after pause(), again. */
  start(): void {
    this.stopped = false;
    this.seeded.clear();
    this.failed.clear();
  }

  private pump(): void {
    while (!this.stopped && this.running < (this.opts.concurrency ?? 4) && this.queue.length > 0) {
      const job = this.queue.shift() as Job;
      this.running += 1;
      void this.run(job).finally(() => {
        this.running -= 1;
        this.pending.delete(jobKey(job.scope, job.hostname));
        this.pump();
      });
    }
  }

  private async run(job: Job): Promise<void> {
    const key = jobKey(job.scope, job.hostname);
    const log = this.opts.logger.child({ scope: job.scope, hostname: job.hostname, challenge: job.solver.type });
    const started = this.opts.clock.now();
    try {
      const pair = await withDeadline(
        this.order(job),
        this.opts.orderTimeoutMs ?? 5 * 60_000,
        `the ACME order for ${job.hostname} took longer than allowed`,
      );
      if (this.stopped) return;
      await job.deliver(pair);
      this.stored.set(key, this.opts.clock.date().getTime());
      this.failed.delete(key);
      log.info('ACME certificate obtained', { ms: this.opts.clock.now() - started });
    } catch (err) {
      if (this.stopped) return;
      // The account may be what failed (an ACME server that lost it, a key the CA deactivated):
      // the next attempt registers again (with the same key: the same account where it exists).
      this.accounts.delete(job.account.gateway);
      const attempts = (this.failed.get(key)?.attempts ?? 0) + 1;
      const { initialMs, maxMs } = this.opts.backoff ?? DEFAULT_BACKOFF;
      const delay = Math.min(maxMs, initialMs * 2 ** Math.min(attempts - 1, 30));
      const problem = (await this.explain(err, job.account.directoryUrl)).replace(/\s+/g, ' ').slice(0, 1000);
      this.failed.set(key, {
        hostname: job.hostname,
        problem,
        attempts,
        retryAt: iso(this.opts.clock.date().getTime() + delay),
      });
      log.warn('ACME order failed; retried with backoff', { problem, attempts, retryInMs: delay });
    }
    job.changed();
  }

  private async order(job: Job): Promise<IssuedPair> {
    const client = await this.account(job.account);
    const order = await client.createOrder({ identifiers: [{ type: 'dns', value: job.hostname }] });
    for (const authz of await client.getAuthorizations(order)) {
      if (authz.status === 'valid') continue;
      const challenge = authz.challenges.find((c) => c.type === job.solver.type);
      if (!challenge)
        throw new WebgwError(
          'WEBGW_ERR_ACME',
          `the ACME server offers no ${job.solver.type} challenge for ${authz.identifier.value}`,
        );
      const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
      try {
        await job.solver.present(authz, challenge.token, keyAuthorization);
        await client.completeChallenge(challenge);
        await client.waitForValidStatus(challenge);
      } finally {
        await job.solver.withdraw(authz, challenge.token).catch(() => {});
      }
    }
    const { privateKey } = await generateEcKey('ec', {
      namedCurve: 'P-256',
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const [, csr] = await acmeCrypto.createCsr({ commonName: job.hostname, altNames: [job.hostname] }, privateKey);
    const finalized = await client.finalizeOrder(order, csr);
    const certPem = await client.getCertificate(finalized);
    return { certPem, keyPem: privateKey };
  }

  /** The Gateway's account: its key from (or created in) a Secret, registered once per process. */
  private account(job: Account): Promise<Client> {
    const fingerprint = `${job.directoryUrl}\n${job.email ?? ''}`;
    const known = this.accounts.get(job.gateway);
    if (known?.fingerprint === fingerprint) return known.client;
    const client = (async () => {
      const accountKey = await this.accountKey(job);
      const c = new Client({
        directoryUrl: job.directoryUrl,
        accountKey,
        backoffMin: 500,
        backoffMax: 5000,
        backoffAttempts: 12,
      });
      await c.createAccount({ termsOfServiceAgreed: true, ...(job.email ? { contact: [`mailto:${job.email}`] } : {}) });
      return c;
    })();
    this.accounts.set(job.gateway, { fingerprint, client });
    // A failed registration is tried again with the next order.
    client.catch(() => {
      if (this.accounts.get(job.gateway)?.client === client) this.accounts.delete(job.gateway);
    });
    return client;
  }

  private async accountKey(job: Account): Promise<string> {
    const { client, namespace } = this.opts;
    const name = acmeAccountSecretName(job.gateway);
    try {
      const key = secretText(await client.core.readNamespacedSecret({ name, namespace }), 'account.key');
      if (key) return key;
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
    }
    const { privateKey } = await generateEcKey('ec', {
      namedCurve: 'P-256',
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    try {
      await client.create({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: this.meta(job, name, 'acme-account'),
        type: 'Opaque',
        stringData: { 'account.key': privateKey },
      } as KubernetesObject);
      return privateKey;
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
      // Another controller process created it first: use that one.
      const key = secretText(await client.core.readNamespacedSecret({ name, namespace }), 'account.key');
      if (!key) throw new WebgwError('WEBGW_ERR_ACME', `Secret ${namespace}/${name} has no account.key`);
      return key;
    }
  }

  /** A Gateway's certificate goes to a Secret of the controller's namespace (certificates.ts). */
  private async store(gw: Gateway, hostname: string, pair: IssuedPair): Promise<void> {
    const account: Account = { gateway: gw.metadata.name, uid: gw.metadata.uid, directoryUrl: '', email: undefined };
    const name = acmeSecretName(gw.metadata.name, hostname);
    const meta = this.meta(account, name, ACME_COMPONENT);
    const secret: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { ...meta, annotations: { [ACME_HOSTNAME_ANNOTATION]: hostname } },
      type: 'kubernetes.io/tls',
      data: {
        'tls.crt': Buffer.from(pair.certPem).toString('base64'),
        'tls.key': Buffer.from(pair.keyPem).toString('base64'),
      },
    };
    await this.opts.client.apply(secret as KubernetesObject);
  }

  private meta(
    job: Account,
    name: string,
    component: string,
  ): {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    ownerReferences: ReturnType<typeof controllerReference>[];
  } {
    return {
      name,
      namespace: this.opts.namespace,
      labels: {
        [GATEWAY_LABEL]: job.gateway,
        [COMPONENT_LABEL]: component,
        'app.kubernetes.io/managed-by': 'webgw',
        'app.kubernetes.io/name': 'webgw',
      },
      ownerReferences: [controllerReference({ kind: 'Gateway', name: job.gateway, uid: job.uid })],
    };
  }
}

function withDeadline<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WebgwError('WEBGW_ERR_TIMEOUT', message)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
