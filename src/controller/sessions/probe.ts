/**
 * Reads every gateway replica's session table once per interval, over mutual TLS on its tunnel
 * port, with a short-lived reader certificate from that gateway's CA (the gateway keeps no
 * cluster credentials; the reader certificate can read the table and nothing else). One
 * request per replica per round, none while the previous one to it is still out; answers are
 * bounded in size and time. Changes are announced per ExposedService identity and per Gateway,
 * so reconcilers run (and write) only for what changed.
 */
import type { Clock, Timer } from '../../common/clock.ts';
import { WebgwError, describeError, isWebgwError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import {
  MAX_REPORT_BYTES,
  SESSION_REPORT_PATH,
  parseSessionReport,
  type SessionReport,
} from '../../common/session-report.ts';
import { SESSION_READER_GRANT } from '../../pki/grants.ts';
import type { KeyPairPem } from '../../pki/issue.ts';
import { ControllerCertificates } from '../edge/controller-certificates.ts';
import { replicaRequest } from '../edge/replica-request.ts';
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

const MAX_TIMEOUT_MS = 5000;

export class SessionProbe {
  private readonly opts: SessionProbeOptions;
  private readonly observations = new Map<string, GatewayObservation>();
  private readonly readers: ControllerCertificates;
  private readonly inFlight = new Set<string>();
  private timer: Timer | undefined;
  private running = false;

  constructor(opts: SessionProbeOptions) {
    this.opts = opts;
    this.readers = new ControllerCertificates(opts.clock, SESSION_READER_GRANT);
  }

  /** The last readings of a gateway; undefined until its first round completed. */
  observation(gateway: string): GatewayObservation | undefined {
    return this.observations.get(gateway);
  }

  /** Reads the gateways every interval (this process leads); after pause(), again. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stops the rounds and forgets every reading (a new leader starts from its own). */
  pause(): void {
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
      const reader = this.readers.for(t.gateway, t.ca);
      const timeoutMs = Math.min(MAX_TIMEOUT_MS, Math.max(500, this.opts.intervalMs / 2));
      const readings = await Promise.all(
        t.replicas.map(async (r): Promise<ReplicaReading> => {
          try {
            const report = await fetchReport({
              ...r,
              port: t.port,
              serverName: t.serverName,
              caPem: t.ca.certPem,
              reader,
              timeoutMs,
            });
            return { pod: r.pod, address: r.address, reachable: true, report };
          } catch (err) {
            return { pod: r.pod, address: r.address, reachable: false, error: stableReason(err) };
          }
        }),
      );
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
}

/** GET the session table: the server must present this gateway's tunnel certificate. */
async function fetchReport(
  o: ProbeTarget & { port: number; serverName: string; caPem: string; reader: KeyPairPem; timeoutMs: number },
): Promise<SessionReport> {
  const answer = await replicaRequest({
    ...o,
    client: o.reader,
    method: 'GET',
    path: SESSION_REPORT_PATH,
    maxResponseBytes: MAX_REPORT_BYTES,
  });
  if (answer.status !== 200) throw new WebgwError('WEBGW_ERR_PROTOCOL', `HTTP ${answer.status}`);
  return parseSessionReport(answer.body);
}

/** A short reason that stays the same while the failure does (it is shown in status). */
function stableReason(err: unknown): string {
  if (isWebgwError(err, 'WEBGW_ERR_TIMEOUT')) return 'no answer within the timeout';
  if (isWebgwError(err)) return `unreadable session report (${err.message.slice(0, 80)})`;
  const code = (err as { code?: unknown }).code;
  return `unreachable (${typeof code === 'string' ? code : describeError(err).slice(0, 80)})`;
}
