/**
 * One Upgrade request (WebSocket), top to bottom: the head goes to the backend, and the client's
 * connection becomes a raw relay only once the backend answered 101. Bytes the client sent after
 * its head wait until then; any other answer is forwarded as a response and the connection ends,
 * so a declined upgrade can never carry the client's next request to this backend. Every error
 * ends in this request's scope.
 */
import { plainAddress } from '../../common/net.ts';
import { relay } from '../../common/relay.ts';
import type { RequestHead } from '../../common/http/request-parser.ts';
import type { TunnelStream } from '../../tunnel/stream.ts';
import type { ClientConnection } from './client-connection.ts';
import { exchange } from './exchange.ts';
import { forwardRequestHeaders, headerLines } from './headers.ts';
import { RequestScope, type HttpServing } from './request-scope.ts';
import { messageForStatus, statusForError } from './statuses.ts';

export async function serveUpgrade(
  serving: HttpServing,
  conn: ClientConnection,
  head: RequestHead,
  rest: Buffer,
): Promise<void> {
  const scope = new RequestScope(serving, conn, head, { observed: false });
  try {
    await upgrade(scope, rest);
  } catch (err) {
    scope.abandon(err);
  }
}

async function upgrade(scope: RequestScope, rest: Buffer): Promise<void> {
  const { serving, conn, hostname } = scope;
  const keep = false;
  if (!hostname) return scope.answer(400, 'missing or invalid Host header', '-', keep);
  if (scope.answerIfMisdirected(hostname, keep)) return;
  const [kind] = scope.kinds;
  const status = serving.connector.status(kind, hostname);
  if (status === 'unknown' && kind === 'http' && serving.connector.status('https', hostname) !== 'unknown')
    return scope.redirect(hostname, keep);
  if (status !== 'ok') {
    const code = status === 'unknown' ? 404 : 503;
    return scope.answer(code, messageForStatus(code, hostname), '-', keep);
  }
  const socket = conn.socket;
  let stream: TunnelStream;
  try {
    ({ stream } = await serving.connector.open(
      {
        protocol: 'http',
        hostname,
        port: conn.origin.port,
        client: { address: plainAddress(socket.remoteAddress), port: socket.remotePort ?? 0 },
        local: { address: plainAddress(socket.localAddress), port: socket.localPort ?? 0 },
      },
      undefined,
      kind,
    ));
  } catch (err) {
    const code = statusForError(err);
    return scope.answer(code, messageForStatus(code, hostname), '-', keep);
  }
  await relayOnceSwitched(scope, hostname, stream, rest);
}

async function relayOnceSwitched(
  scope: RequestScope,
  hostname: string,
  stream: TunnelStream,
  rest: Buffer,
): Promise<void> {
  const { serving, conn, head } = scope;
  const socket = conn.socket;
  if (scope.clientGone) {
    stream.destroy();
    return;
  }
  const run = exchange({
    client: socket,
    request: head,
    stream,
    headers: forwardRequestHeaders(head.rawHeaders, scope.forwardContext(true)),
    keepClient: false,
    responseTimeoutMs: serving.limits.responseTimeoutMs,
    clock: serving.clock,
  });
  run.body.end(); // an upgrade request has no body (request-parser.ts)
  const outcome = await run.outcome;
  if (outcome.kind === 'switched') {
    if (scope.clientGone) {
      stream.destroy();
      return;
    }
    const { head: answer } = outcome;
    const statusLine = `HTTP/1.1 101 ${answer.statusMessage || 'Switching Protocols'}\r\n`;
    socket.write(`${statusLine}${headerLines(answer.rawHeaders)}\r\n`, 'latin1');
    if (outcome.rest.length > 0) socket.write(outcome.rest);
    if (rest.length > 0) stream.write(rest);
    serving.metrics.activeConnections.inc({ protocol: 'http' });
    relay(socket, stream, () => serving.metrics.activeConnections.dec({ protocol: 'http' }));
    stream.resume();
    return;
  }
  stream.destroy();
  if (outcome.kind === 'done') conn.finishRequest(false);
  else if (outcome.responseStarted) socket.destroy();
  else {
    const code = statusForError(outcome.error);
    scope.answer(code, messageForStatus(code, hostname), '-', false);
  }
}
