/**
 * The session table a gateway replica reports to the controller (GET SESSION_REPORT_PATH on its
 * tunnel port, mutual TLS with a reader certificate: pki/verify.ts). One format, imported by
 * the side that writes it (proxy/) and the side that reads it (controller/).
 */
import { WebgwError } from './errors.ts';

export const SESSION_REPORT_PATH = '/v1/sessions';

export interface ReportedSession {
  /** The agent certificate's identity grant: `namespace/name/uid` of its ExposedService. */
  identity: string;
  /** When the session was accepted (ISO 8601). */
  since: string;
  /** Last measured round trip of the tunnel's PING, if one was measured. */
  rttMs?: number;
  /** Sent or received GOAWAY: serves what it has, takes no new streams. */
  draining: boolean;
}

export interface SessionReport {
  sessions: ReportedSession[];
  /** Routes (hostnames and ports) this replica serves now. */
  routes: number;
}

/** A report is at most this large (10,000 sessions at ~150 bytes, with room). */
export const MAX_REPORT_BYTES = 4 * 1024 * 1024;
const MAX_SESSIONS = 20_000;
const IDENTITY = /^[A-Za-z0-9._:/-]{0,253}$/;

/**
 * Checks a report read from a gateway: the farmer's process is not the controller's to trust
 * blindly, and what it says ends up in tenants' status. Throws on anything malformed.
 */
export function parseSessionReport(text: string): SessionReport {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new WebgwError('WEBGW_ERR_PROTOCOL', 'session report is not JSON', { cause: err });
  }
  const bad = (why: string): never => {
    throw new WebgwError('WEBGW_ERR_PROTOCOL', `session report: ${why}`);
  };
  if (typeof raw !== 'object' || raw === null) return bad('not an object');
  const { sessions, routes } = raw as { sessions?: unknown; routes?: unknown };
  if (!Array.isArray(sessions) || sessions.length > MAX_SESSIONS) return bad('sessions missing or too many');
  if (typeof routes !== 'number' || !Number.isInteger(routes) || routes < 0) return bad('routes is not a count');
  const out: ReportedSession[] = [];
  for (const s of sessions as unknown[]) {
    const { identity, since, rttMs, draining } = (s ?? {}) as Record<string, unknown>;
    if (typeof identity !== 'string' || !IDENTITY.test(identity)) return bad('a session has no valid identity');
    if (typeof since !== 'string' || Number.isNaN(Date.parse(since))) return bad('a session has no valid start');
    if (rttMs !== undefined && (typeof rttMs !== 'number' || !(rttMs >= 0) || rttMs > 3_600_000))
      return bad('a session has an invalid round-trip time');
    out.push({
      identity,
      since: new Date(since).toISOString(),
      ...(rttMs === undefined ? {} : { rttMs }),
      draining: draining === true,
    });
  }
  return { sessions: out, routes };
}
