/**
 * Serves one incoming tunnel stream: find the route's backend, connect to it, write the PROXY
 * header if configured, accept the stream, relay. A backend that cannot be reached refuses the
 * stream before any byte moved, so the gateway can try another agent. TLS routes the agent
 * terminates go to terminate.ts.
 */
import type { Logger } from '../common/log.ts';
import { ResetCode } from '../tunnel/frame.ts';
import type { TunnelStream } from '../tunnel/stream.ts';
import { dialBackend, relayToBackend, writeProxyHeader } from './backend.ts';
import type { AgentMetrics } from './metrics.ts';
import { matchRoute, type CompiledRoute } from './routes.ts';
import { serveTerminated } from './terminate.ts';
import type { TlsCertificates } from './tls-certificates.ts';

export interface ForwardOptions {
  routes: readonly CompiledRoute[];
  connectTimeoutMs: number;
  /** TLS the agent terminates: the ClientHello and handshake must be done within this. */
  handshakeTimeoutMs: number;
  certificates: TlsCertificates;
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
    opts.logger.warn('stream for a route this agent does not serve', {
      protocol,
      hostname: open.hostname,
      port: open.port,
    });
    stream.refuse(ResetCode.NO_ROUTE, `agent has no backend for ${protocol} ${open.hostname || open.port}`);
    return;
  }
  if (route.terminate) {
    serveTerminated(stream, route, opts);
    return;
  }
  dialBackend(
    route.backend,
    opts,
    (err, socket) => {
      if (err || !socket) {
        opts.metrics.streams.inc({ protocol, result: 'backend-unreachable' });
        stream.refuse(
          ResetCode.BACKEND_UNREACHABLE,
          `backend ${route.backend.host}:${route.backend.port}: ${err?.message ?? 'closed'}`,
        );
        return;
      }
      if (stream.destroyed) {
        socket.destroy();
        return;
      }
      // PROXY headers describe one client per connection; pooled HTTP streams carry many.
      if (protocol !== 'http') writeProxyHeader(socket, route.backend, open);
      stream.accept();
      relayToBackend(stream, socket, protocol, opts.metrics);
    },
    stream,
  );
}
