/** One authenticated agent as the gateway sees it: its tunnel session and its grants. */
import { hostnameMatches, type GrantSet } from '../pki/grants.ts';
import type { TunnelSession } from '../tunnel/session.ts';
import type { RouteAgent } from './route-table.ts';

export class AgentLink implements RouteAgent {
  readonly id: string;
  readonly session: TunnelSession;
  readonly grants: GrantSet;
  readonly remote: string;
  readonly notAfter: Date;
  readonly serial: string;
  /** When its session was accepted (the session report's "since"). */
  readonly connectedAt: Date;
  /** Its credential was withdrawn: its routes are gone for good, not waiting for it to return. */
  withdrawn = false;

  constructor(
    id: string,
    session: TunnelSession,
    grants: GrantSet,
    remote: string,
    notAfter: Date,
    serial: string,
    connectedAt: Date,
  ) {
    this.id = id;
    this.session = session;
    this.grants = grants;
    this.remote = remote;
    this.notAfter = notAfter;
    this.serial = serial;
    this.connectedAt = connectedAt;
  }

  /** Its backend for this HTTP name speaks HTTP/2 cleartext (grant h2c). */
  speaksH2c(hostname: string): boolean {
    return this.grants.h2c.some((pattern) => hostnameMatches(pattern, hostname));
  }

  get draining(): boolean {
    return this.session.isDraining || this.session.isClosed;
  }
}
