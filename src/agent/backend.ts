/** The agent's side of a stream's backend: connect within a bound, the PROXY header, the relay. */
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebgwError, describeError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { relay } from '../common/relay.ts';
import type { OpenRequest } from '../tunnel/open.ts';
import type { AgentMetrics } from './metrics.ts';
import { proxyHeaderV1, proxyHeaderV2 } from './proxy-protocol.ts';
import type { Backend } from './routes.ts';

/**
 * Connects to a backend within connectTimeoutMs; `done` gets the connected socket or the error.
 * `client`: the other side; its close (the gateway gave up) abandons the attempt.
 */
export function dialBackend(
  backend: Backend,
  opts: { connectTimeoutMs: number; logger: Logger },
  done: (err: Error | undefined, socket?: Socket) => void,
  client: { once(e: 'close', f: () => void): unknown },
): void {
  const socket: Socket = connect({ host: backend.host, port: backend.port, allowHalfOpen: true, noDelay: true });
  // A plain timer, cleared on connect: socket.setTimeout(0) would keep its Timeout object (and
  // what it holds) alive for the whole life of the connection.
  const connectTimer = setTimeout(
    () => onConnectFailure(new WebgwError('WEBGW_ERR_TIMEOUT', `connect timed out after ${opts.connectTimeoutMs} ms`)),
    opts.connectTimeoutMs,
  );
  const onConnectFailure = (err: Error): void => {
    clearTimeout(connectTimer);
    socket.destroy();
    opts.logger.warn('backend unreachable', { backend: `${backend.host}:${backend.port}`, err: describeError(err) });
    done(err);
  };
  socket.once('error', onConnectFailure);
  client.once('close', () => socket.destroy());
  socket.once('connect', () => {
    clearTimeout(connectTimer);
    socket.removeListener('error', onConnectFailure);
    socket.on('error', () => {});
    done(undefined, socket);
  });
}

export function writeProxyHeader(socket: Socket, backend: Backend, open: OpenRequest): void {
  if (backend.proxyProtocol !== 'none')
    socket.write(backend.proxyProtocol === 'v1' ? proxyHeaderV1(open) : proxyHeaderV2(open));
}

export function relayToBackend(client: Duplex, socket: Socket, protocol: string, metrics: AgentMetrics): void {
  metrics.streams.inc({ protocol, result: 'served' });
  metrics.activeStreams.inc();
  relay(client, socket, () => metrics.activeStreams.dec());
}
