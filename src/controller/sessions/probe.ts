/**
 * Reads every gateway replica's session table once per interval, over mutual TLS on its tunnel
 * port, with a short-lived reader certificate from that gateway's CA (the gateway keeps no
 * cluster credentials; the reader certificate can read the table and nothing else). One
 * request per replica per round, none while the previous one to it is still out; answers are
 * bounded in size and time. Changes are announced per ExposedService identity and per Gateway,
 * so reconcilers run (and write) only for what changed.
 */
import { request } from 'node:https';
import type { Clock, Timer } from '../../common/clock.ts';
import { WebgwError, describeError, isWebgwError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import { MAX_REPORT_BYTES, SESSION_REPORT_PATH, parseSessionReport, type SessionReport } from '../../common/session-report.ts';
import { issueSessionReaderCertificate, type KeyPairPem } from '../../pki/issue.ts';
import { GatewayObservation, type ReplicaReading } from './observations.ts';

/** A replica to read: a proxy pod and the address its agents dial. */
export interface ProbeTarget {
  pod: string;
  address: string;
}

export interface GatewayTargets {
  gateway: string;
  /** The gateway's CA (the probe issues its reader certificate from it). */
  ca: KeyPairPem;
  serverName: string;
  port: number;
  replicas: ProbeTarget[];
}

export interface SessionProbeOptions {
  intervalMs: number;
  /** What to read this round (from the controller's caches). */
  targets: () => GatewayTargets[];
  /** The sessions of these identities (`namespace/name/uid`) on this gateway changed. */
  onServicesChanged: (gateway: string, identities: ReadonlySet<string> | 'all') => void;
  /** The gateway's replicas (reachability, session and route counts) changed. */
  onGatewayChanged: (gateway: string) => void;
  clock: Clock;
  logger: Logger;
}

const READER_VALIDITY_MS = 3600_000;
const MAX_TIMEOUT_MS = 5000;

interface Reader {
  caPem: string;
  pair: KeyPairPem;
  renewAt: number;
}

export class SessionProbe {
  private readonly opts: SessionProbeOptions;
  private readonly observations = new Map<string, GatewayObservation>();
  private readonly readers = new Map<string, Reader>();
  private readonly inFlight = new Set<string>();
  private timer: Timer | undefined;
  private running = false;

  constructor(opts: SessionProbeOptions) {
    this.opts = opts;
  }

  /** The last readings of a gateway; undefined until its first round completed. */
  observation(gateway: string): GatewayObservation | undefined {
    return this.observations.get(gateway);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stops the rounds and forgets every reading (a new leader starts from its own). */
  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
    this.observations.clear();
  }

  /** One round over every gateway (exported for tests; the timer calls it). */
  async round(): Promise<void> {
    const targets = this.opts.targets();
    const names = new Set(targets.map((t) => t.gateway));
    for (const gone of [...this.observations.keys()].filter((g) => !names.has(g))) this.observations.delete(gone);
    await Promise.all(targets.map((t) => this.readGateway(t)));
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer = this.opts.clock.setTimeout(() => {
      this.round()
        .catch((err: unknown) => this.opts.logger.warn('session probe round failed', { err: describeError(err) }))
        .finally(() => this.schedule(this.opts.intervalMs));
    }, delayMs);
  }

  private async readGateway(t: GatewayTargets): Promise<void> {
    if (this.inFlight.has(t.gateway)) return;
    this.inFlight.add(t.gateway);
    try {
      const reader = this.reader(t);
      const timeoutMs = Math.min(MAX_TIMEOUT_MS, Math.max(500, this.opts.intervalMs / 2));
      const readings = await Promise.all(t.replicas.map(async (r): Promise<ReplicaReading> => {
        try {
          const report = await fetchReport({ ...r, port: t.port, serverName: t.serverName, caPem: t.ca.certPem, reader, timeoutMs });
          return { pod: r.pod, address: r.address, reachable: true, report };
        } catch (err) {
          return { pod: r.pod, address: r.address, reachable: false, error: stableReason(err) };
        }
      }));
      if (!this.running) return;
      const known = this.observations.get(t.gateway);
      const observation = known ?? new GatewayObservation(t.gateway);
      this.observations.set(t.gateway, observation);
      const changed = observation.update(readings);
      if (!known || changed.gateway) this.opts.onGatewayChanged(t.gateway);
      if (!known || changed.replicas) this.opts.onServicesChanged(t.gateway, 'all');
      else if (changed.identities.size > 0) this.opts.onServicesChanged(t.gateway, changed.identities);
    } finally {
      this.inFlight.delete(t.gateway);
    }
  }

  /** The reader certificate for a gateway: reissued when its CA changed or at 2/3 of its life. */
  private reader(t: GatewayTargets): KeyPairPem {
    const now = this.opts.clock.date().getTime();
    const known = this.readers.get(t.gateway);
    if (known && known.caPem === t.ca.certPem && known.renewAt > now) return known.pair;
    const pair = issueSessionReaderCertificate(t.ca, { notBefore: new Date(now - 5 * 60_000), notAfter: new Date(now + READER_VALIDITY_MS) });
    this.readers.set(t.gateway, { caPem: t.ca.certPem, pair, renewAt: now + (READER_VALIDITY_MS * 2) / 3 });
    return pair;
  }
}

interface FetchOptions extends ProbeTarget {
  port: number;
  serverName: string;
  caPem: string;
  reader: KeyPairPem;
  timeoutMs: number;
}

/** GET the session table: the server must present this gateway's tunnel certificate. */
function fetchReport(o: FetchOptions): Promise<SessionReport> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: o.address, port: o.port, path: SESSION_REPORT_PATH, method: 'GET',
      servername: o.serverName, ca: o.caPem, cert: o.reader.certPem, key: o.reader.keyPem,
      agent: false, timeout: o.timeoutMs, headers: { accept: 'application/json' },
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_REPORT_BYTES) req.destroy(new WebgwError('WEBGW_ERR_PROTOCOL', 'report too large'));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new WebgwError('WEBGW_ERR_PROTOCOL', `HTTP ${res.statusCode}`));
        try {
          resolve(parseSessionReport(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          reject(err as Error);
        }
      });
      res.on('error', reject);
    });
    const timedOut = (): void => {
      req.destroy(new WebgwError('WEBGW_ERR_TIMEOUT', 'timeout'));
    };
    // `timeout` is for an idle socket; the deadline bounds the whole exchange.
    const deadline = setTimeout(timedOut, o.timeoutMs);
    req.on('close', () => clearTimeout(deadline));
    req.on('timeout', timedOut);
    req.on('error', reject);
    req.end();
  });
}

/** A short reason that stays the same while the failure does (it is shown in status). */
function stableReason(err: unknown): string {
  if (isWebgwError(err, 'WEBGW_ERR_TIMEOUT')) return 'no answer within the timeout';
  if (isWebgwError(err)) return `unreadable session report (${err.message.slice(0, 80)})`;
  const code = (err as { code?: unknown }).code;
  return `unreachable (${typeof code === 'string' ? code : describeError(err).slice(0, 80)})`;
}

