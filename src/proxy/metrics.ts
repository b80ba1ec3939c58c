/** Gateway metrics, registered on the Registry passed in (never prom-client's global one). */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface GatewayMetrics {
  agentSessions: Gauge;
  handshakeFailures: Counter<'reason'>;
  tunnelRtt: Histogram;
  connections: Counter<'protocol' | 'route' | 'result'>;
  activeConnections: Gauge<'protocol'>;
  refusedConnections: Counter<'protocol' | 'reason'>;
  bytes: Counter<'protocol' | 'route' | 'direction'>;
  httpRequests: Histogram<'route' | 'code'>;
  tlsTerminations: Counter<'result'>;
}

export function createGatewayMetrics(registry: Registry): GatewayMetrics {
  const registers = [registry];
  return {
    agentSessions: new Gauge({
      name: 'webgw_gateway_agent_sessions',
      help: 'Agent tunnel sessions connected',
      registers,
    }),
    handshakeFailures: new Counter({
      name: 'webgw_gateway_agent_refused_total',
      help: 'Agent connections refused, by reason',
      labelNames: ['reason'],
      registers,
    }),
    tunnelRtt: new Histogram({
      name: 'webgw_gateway_tunnel_rtt_seconds',
      help: 'Tunnel round-trip time measured by PING/PONG',
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    connections: new Counter({
      name: 'webgw_gateway_connections_total',
      help: 'Public connections (HTTP: upstream streams), by route and result',
      labelNames: ['protocol', 'route', 'result'],
      registers,
    }),
    activeConnections: new Gauge({
      name: 'webgw_gateway_active_connections',
      help: 'Public connections being relayed',
      labelNames: ['protocol'],
      registers,
    }),
    refusedConnections: new Counter({
      name: 'webgw_gateway_connections_refused_total',
      help: 'Public connections closed at once: a client or the gateway at its connection limit',
      labelNames: ['protocol', 'reason'],
      registers,
    }),
    bytes: new Counter({
      name: 'webgw_gateway_bytes_total',
      help: 'Bytes relayed, by route and direction (in: from the client)',
      labelNames: ['protocol', 'route', 'direction'],
      registers,
    }),
    httpRequests: new Histogram({
      name: 'webgw_gateway_http_request_duration_seconds',
      help: 'HTTP requests by route and status code',
      labelNames: ['route', 'code'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    }),
    tlsTerminations: new Counter({
      name: 'webgw_gateway_tls_terminations_total',
      help: 'TLS handshakes the gateway terminated, by result (done, failed, timeout, no-certificate)',
      labelNames: ['result'],
      registers,
    }),
  };
}
