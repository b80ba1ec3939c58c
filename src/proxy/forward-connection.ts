/**
 * Forwards one public TLS or TCP connection over a tunnel stream: open (with retry across the
 * route's agents), replay what was already read (the ClientHello), then relay both ways.
 */
import type { Socket } from 'node:net';
import { describeError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { relay } from '../common/relay.ts';
import type { OpenRequest } from '../tunnel/open.ts';
import type { Connector } from './connector.ts';
import type { RouteKind } from './route-table.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface ForwardDeps {
  connector: Connector;
  metrics: GatewayMetrics;
  logger: Logger;
}

/**
 * Resolves when the relay started; `onRefused` runs when no agent could take the connection.
 * `kind`: the route the client came by, when it is not `request.protocol` (tls-terminated).
 */
export async function forwardConnection(
  socket: Socket,
  request: OpenRequest,
  prefix: Buffer | undefined,
  deps: ForwardDeps,
  onRefused: (err: Error) => void,
  kind: RouteKind = request.protocol,
): Promise<void> {
  const route = request.protocol === 'tcp' ? String(request.port) : request.hostname;
  const labels = { protocol: kind, route };
  let opened;
  try {
    opened = await deps.connector.open(request, undefined, kind);
  } catch (err) {
    deps.metrics.connections.inc({ ...labels, result: 'refused' });
    deps.logger.debug('no agent took the connection', { ...labels, err: describeError(err) });
    onRefused(err as Error);
    return;
  }
  const { stream } = opened;
  if (socket.destroyed) {
    stream.destroy();
    return;
  }
  deps.metrics.connections.inc({ ...labels, result: 'relayed' });
  deps.metrics.activeConnections.inc({ protocol: kind });
  if (prefix && prefix.length > 0) stream.write(prefix);
  const readBefore = socket.bytesRead;
  relay(socket, stream, () => {
    deps.metrics.activeConnections.dec({ protocol: kind });
    deps.metrics.bytes.inc({ ...labels, direction: 'in' }, socket.bytesRead - readBefore + (prefix?.length ?? 0));
    deps.metrics.bytes.inc({ ...labels, direction: 'out' }, socket.bytesWritten);
  });
}
