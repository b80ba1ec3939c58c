/**
 * Serves one incoming tunnel stream: find the route's backend, connect to it, write the PROXY
 * header if configured, accept the stream, relay. A backend that cannot be reached refuses the
 * stream before any byte moved, so the gateway can try another agent.
 */
import { connect, type Socket } from 'node:net';
import { describeError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { relay } from '../common/relay.ts';
import { ResetCode } from '../tunnel/frame.ts';
import type { TunnelStream } from '../tunnel/stream.ts';
import type { AgentMetrics } from './metrics.ts';
import { proxyHeaderV1, proxyHeaderV2 } from './proxy-protocol.ts';
import { matchRoute, type CompiledRoute } from './routes.ts';

export interface ForwardOptions {
  routes: readonly CompiledRoute[];
  connectTimeoutMs: number;
  logger: Logger;
  metrics: AgentMetrics;
}

/** `gateway`: the configured name of the gateway the stream came from. */
export function serveStream(stream: TunnelStream, gateway: string, opts: ForwardOptions): void {
  const open = stream.request;
  const route = matchRoute(opts.routes, open, gateway);
  const protocol = open.protocol;
  if (!route) {
    opts.metrics.streams.inc({ protocol, result: 'no-route' });
    opts.logger.warn('stream for a route this agent does not serve', { protocol, hostname: open.hostname, port: open.port });
    stream.refuse(ResetCode.NO_ROUTE, `agent has no backend for ${protocol} ${open.hostname || open.port}`);
    return;
  }
  const { backend } = route;
  const socket: Socket = connect({ host: backend.host, port: backend.port, allowHalfOpen: true, noDelay: true });
  // A plain timer, cleared on connect: socket.setTimeout(0) would keep its Timeout object (and
  // what it holds) alive for the whole life of the connection.
  const connectTimer = setTimeout(() => onConnectFailure(new Error(`connect timed out after ${opts.connectTimeoutMs} ms`)), opts.connectTimeoutMs);
  const onConnectFailure = (err: Error): void => {
    clearTimeout(connectTimer);
    socket.destroy();
    opts.metrics.streams.inc({ protocol, result: 'backend-unreachable' });
    opts.logger.warn('backend unreachable', { backend: `${backend.host}:${backend.port}`, err: describeError(err) });
    stream.refuse(ResetCode.BACKEND_UNREACHABLE, `backend ${backend.host}:${backend.port}: ${err.message}`);
  };
  socket.once('error', onConnectFailure);
  // The gateway gave up (client left) before the backend answered.
  stream.once('close', () => socket.destroy());
  socket.once('connect', () => {
    clearTimeout(connectTimer);
    socket.removeListener('error', onConnectFailure);
    socket.on('error', () => {});
    if (stream.destroyed) {
      socket.destroy();
      return;
    }
    // PROXY headers describe one client per connection; pooled HTTP streams carry many.
    if (backend.proxyProtocol !== 'none' && protocol !== 'http') {
      socket.write(backend.proxyProtocol === 'v1' ? proxyHeaderV1(open) : proxyHeaderV2(open));
    }
    stream.accept();
    opts.metrics.streams.inc({ protocol, result: 'served' });
    opts.metrics.activeStreams.inc();
    relay(stream, socket, () => opts.metrics.activeStreams.dec());
  });
}
