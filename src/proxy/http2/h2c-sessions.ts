/**
 * HTTP/2 sessions to backends that speak it without TLS (grant `h2c`, e.g. gRPC servers): one
 * tunnel stream carries one session, opened with prior knowledge, and many requests share it.
 * Per route and agent at most MAX_SESSIONS sessions of MAX_STREAMS_PER_SESSION requests each;
 * a session with no request for IDLE_MS is closed (GOAWAY), one the backend closes or sends
 * GOAWAY on takes no new request.
 */
import { connect, type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import type { Clock, Timer } from '../../common/clock.ts';
import { WebgwError } from '../../common/errors.ts';
import type { AgentLink } from '../agent-link.ts';
import type { Connector } from '../connector.ts';
import { pooledOpen, poolKey } from '../http/idle-streams.ts';
import type { RouteKind } from '../route-table.ts';

const MAX_SESSIONS = 8;
const MAX_STREAMS_PER_SESSION = 100;
const IDLE_MS = 60_000;
/** What one backend session may hold in nghttp2 (header tables, queued frames), in MB. */
const SESSION_MEMORY_MB = 4;

interface Pooled {
  session: ClientHttp2Session;
  link: AgentLink;
  active: number;
  idle: Timer | undefined;
  closed: boolean;
}

export interface H2cRequest {
  link: AgentLink;
  hostname: string;
  /** The route the client came by (http or https) and its public port, for the OPEN. */
  kind: RouteKind;
  port: number;
  headers: OutgoingHttpHeaders;
  /** The request has no body (HEADERS carried END_STREAM). */
  endStream: boolean;
}

export class H2cSessions {
  private readonly connector: Connector;
  private readonly clock: Clock;
  private readonly maxHeaderBytes: number;
  private readonly byKey = new Map<string, Pooled[]>();
  /** A session being opened per key: requests meanwhile wait for it rather than open more. */
  private readonly opening = new Map<string, Promise<Pooled>>();

  constructor(opts: { connector: Connector; clock: Clock; maxHeaderBytes: number }) {
    this.connector = opts.connector;
    this.clock = opts.clock;
    this.maxHeaderBytes = opts.maxHeaderBytes;
  }

  /** A request stream to the backend behind `hostname` on `link`. Throws as Connector.open. */
  async request(req: H2cRequest): Promise<ClientHttp2Stream> {
    const key = poolKey(req.hostname, req.link);
    const pooled = this.available(key) ?? (await (this.opening.get(key) ?? this.startOpening(key, req)));
    if (pooled.closed) throw new WebgwError('WEBGW_ERR_BACKEND', `the HTTP/2 session to ${req.hostname} closed`);
    pooled.active += 1;
    pooled.idle?.cancel();
    pooled.idle = undefined;
    const stream = pooled.session.request(req.headers, {
      endStream: req.endStream,
      ...(req.endStream ? {} : { waitForTrailers: true }),
    });
    stream.once('close', () => {
      pooled.active -= 1;
      if (pooled.active === 0 && !pooled.closed && !pooled.session.closed && !pooled.session.destroyed)
        pooled.idle = this.clock.setTimeout(() => pooled.session.close(), IDLE_MS);
    });
    return stream;
  }

  /** The agent drains or left: its sessions take no new requests and close once done. */
  dropAgent(link: AgentLink): void {
    for (const list of this.byKey.values()) for (const p of list) if (p.link === link) this.retire(p);
  }

  destroyAll(): void {
    for (const list of [...this.byKey.values()]) for (const p of list) p.session.destroy();
    this.byKey.clear();
  }

  private available(key: string): Pooled | undefined {
    const list = this.byKey.get(key) ?? [];
    const open = list.filter((p) => !p.closed && !p.link.draining);
    const free = open.find((p) => p.active < MAX_STREAMS_PER_SESSION);
    if (free || open.length < MAX_SESSIONS) return free;
    // Every session full: the least busy one queues it (the backend's own stream limit applies).
    return open.reduce((a, b) => (b.active < a.active ? b : a));
  }

  private startOpening(key: string, req: H2cRequest): Promise<Pooled> {
    const opening = this.openSession(key, req).finally(() => this.opening.delete(key));
    this.opening.set(key, opening);
    return opening;
  }

  private async openSession(key: string, req: H2cRequest): Promise<Pooled> {
    const { stream } = await this.connector.open(pooledOpen(req.hostname, req.port), req.link, req.kind);
    const session = connect(`http://${req.hostname}`, {
      createConnection: () => stream,
      maxSessionMemory: SESSION_MEMORY_MB,
      maxHeaderListPairs: 256,
      settings: { enablePush: false, maxHeaderListSize: this.maxHeaderBytes * 4 },
    });
    const pooled: Pooled = { session, link: req.link, active: 0, idle: undefined, closed: false };
    const list = this.byKey.get(key) ?? [];
    list.push(pooled);
    this.byKey.set(key, list);
    session.on('error', () => {}); // its requests fail with it; 'close' follows
    session.once('goaway', () => this.retire(pooled));
    session.once('close', () => {
      this.retire(pooled);
      const rest = (this.byKey.get(key) ?? []).filter((p) => p !== pooled);
      if (rest.length > 0) this.byKey.set(key, rest);
      else this.byKey.delete(key);
      stream.destroy();
    });
    if (stream.destroyed)
      throw new WebgwError('WEBGW_ERR_BACKEND', 'tunnel stream closed before the HTTP/2 session started');
    return pooled;
  }

  private retire(pooled: Pooled): void {
    if (pooled.closed) return;
    pooled.closed = true;
    pooled.idle?.cancel();
    if (!pooled.session.closed) pooled.session.close();
  }
}
