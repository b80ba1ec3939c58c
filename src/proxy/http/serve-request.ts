/**
 * One HTTP/1.1 request, top to bottom: the head (read by client-connection.ts) → the route (by
 * Host) → a stream to the next agent of the route, reused or new (idle-streams.ts) → the
 * exchange (exchange.ts, or to-h2c.ts for a backend that speaks HTTP/2) → the connection kept for
 * the next request or closed. A stale keep-alive stream is retried on a fresh one (retry.ts).
 * Every error ends in this request's scope: an answer when nothing was sent yet, else its
 * connection is cut; nothing else is touched.
 */
import { WebgwError } from '../../common/errors.ts';
import { WELL_KNOWN_ACME_PREFIX } from '../../common/acme-challenge.ts';
import type { RequestHead } from '../../common/http/request-parser.ts';
import type { TunnelStream } from '../../tunnel/stream.ts';
import type { AgentLink } from '../agent-link.ts';
import { http2RequestHeaders } from '../http2/headers.ts';
import type { ClientConnection } from './client-connection.ts';
import { exchange } from './exchange.ts';
import { forwardRequestHeaders } from './headers.ts';
import { poolKey, takeOrOpen } from './idle-streams.ts';
import { RequestScope, pathOf, type HttpServing } from './request-scope.ts';
import { mayRetry } from './retry.ts';
import { messageForStatus } from './statuses.ts';
import { exchangeH2c } from './to-h2c.ts';

export async function serveRequest(serving: HttpServing, conn: ClientConnection, head: RequestHead): Promise<void> {
  const scope = new RequestScope(serving, conn, head, { observed: true });
  try {
    await route(scope);
  } catch (err) {
    scope.abandon(err);
  }
}

async function route(scope: RequestScope): Promise<void> {
  const { conn, head, hostname, serving } = scope;
  if (!hostname) return scope.answer(400, 'missing or invalid Host header');
  if (conn.origin.scheme === 'http' && head.target.startsWith(WELL_KNOWN_ACME_PREFIX) && answerAcme(scope, hostname))
    return;
  if (scope.answerIfMisdirected(hostname)) return;
  const { kind, status } = await serving.connector.awaitRoute(scope.kinds, hostname);
  if (scope.clientGone) return;
  if (status === 'unknown') return scope.answer(404, messageForStatus(404, hostname));
  if (kind !== 'http' && conn.origin.scheme === 'http') return scope.redirect(hostname);
  if (status === 'no-agent') return scope.answer(503, messageForStatus(503, hostname));
  await forward(scope, hostname);
}

/**
 * An ACME validation (RFC 8555 §8.3): the key authorization the controller handed over for this
 * token and Host, before routing and before the HTTPS redirect (the name may have no
 * certificate yet). False when this gateway holds no such answer: the request is routed.
 */
function answerAcme(scope: RequestScope, hostname: string): boolean {
  const { head, conn } = scope;
  if (head.method !== 'GET' && head.method !== 'HEAD') return false;
  const token = head.target.slice(WELL_KNOWN_ACME_PREFIX.length);
  const keyAuthorization = scope.serving.acmeChallenges?.answer(token, hostname);
  if (keyAuthorization === undefined) return false;
  scope.observe('acme-challenge', 200);
  const body = head.method === 'HEAD' ? '' : keyAuthorization;
  conn.respond(200, body, 'application/octet-stream', head.keepAlive, Buffer.byteLength(keyAuthorization));
  return true;
}

/** To the next agent of the route; again on a fresh stream while a retry is safe (retry.ts). */
async function forward(scope: RequestScope, hostname: string): Promise<void> {
  const { serving, conn } = scope;
  const kind = scope.kinds[0];
  for (let attempt = 1; ; attempt++) {
    const link = serving.connector.pick(kind, hostname);
    if (!link) return scope.fail(hostname, new WebgwError('WEBGW_ERR_NO_AGENT', 'no agent'), false);
    if (link.speaksH2c(hostname)) return forwardToH2c(scope, hostname, link);
    let taken;
    try {
      taken = await takeOrOpen(serving.idle, serving.connector, link, hostname, conn.origin.port, kind);
    } catch (err) {
      return scope.fail(hostname, err as Error, false);
    }
    const next = await exchangeOnce(scope, hostname, attempt, taken.stream, link, taken.reused);
    if (next !== 'retry') return;
  }
}

async function exchangeOnce(
  scope: RequestScope,
  hostname: string,
  attempt: number,
  stream: TunnelStream,
  agent: AgentLink,
  reused: boolean,
): Promise<'finished' | 'retry'> {
  const { serving, conn, head } = scope;
  if (scope.clientGone) {
    serving.idle.put(poolKey(hostname, agent), agent, stream);
    return 'finished';
  }
  const run = exchange({
    client: conn.socket,
    request: head,
    stream,
    headers: forwardRequestHeaders(head.rawHeaders, scope.forwardContext(false)),
    keepClient: head.keepAlive,
    responseTimeoutMs: serving.limits.responseTimeoutMs,
    clock: serving.clock,
  });
  conn.startBody(run.body);
  const outcome = await run.outcome;
  if (outcome.kind === 'done') {
    scope.observe(hostname, outcome.status);
    if (outcome.reusable) serving.idle.put(poolKey(hostname, agent), agent, stream);
    else stream.destroy();
    conn.finishRequest(outcome.keepClient);
    return 'finished';
  }
  if (outcome.kind === 'switched')
    throw new WebgwError('WEBGW_ERR_BACKEND', 'backend switched protocols on a plain request');
  if (outcome.responseStarted) {
    scope.cut(hostname);
    return 'finished';
  }
  const hasBody = head.framing !== undefined;
  if (mayRetry({ reused, error: outcome.error, method: head.method, hasBody, attempt }) && !scope.clientGone)
    return 'retry';
  scope.fail(hostname, outcome.error, true);
  return 'finished';
}

/** A backend that speaks HTTP/2 (grant h2c): the request goes over a pooled HTTP/2 session. */
async function forwardToH2c(scope: RequestScope, hostname: string, link: AgentLink): Promise<void> {
  const { serving, conn, head } = scope;
  const h2Head = {
    method: head.method,
    path: pathOf(head.target),
    authority: head.host ?? hostname,
    fields: withoutHost(head.rawHeaders),
  };
  let upstream;
  try {
    const headers = http2RequestHeaders(h2Head, scope.forwardContext(false), conn.origin.scheme);
    upstream = await serving.h2c.request({
      link,
      hostname,
      kind: scope.kinds[0],
      port: conn.origin.port,
      headers,
      endStream: head.framing === undefined,
    });
  } catch (err) {
    return scope.fail(hostname, err as Error, false);
  }
  if (scope.clientGone) {
    upstream.close();
    return;
  }
  const { limits, clock } = serving;
  const run = exchangeH2c(conn.socket, head, upstream, head.keepAlive, limits.responseTimeoutMs, clock);
  conn.startBody(run.body);
  const outcome = await run.outcome;
  if (outcome.kind === 'done') {
    scope.observe(hostname, outcome.status);
    conn.finishRequest(outcome.keepClient);
  } else if (outcome.responseStarted) scope.cut(hostname);
  else scope.fail(hostname, outcome.error, true);
}

function withoutHost(rawHeaders: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2)
    if ((rawHeaders[i] as string).toLowerCase() !== 'host')
      out.push(rawHeaders[i] as string, rawHeaders[i + 1] as string);
  return out;
}
