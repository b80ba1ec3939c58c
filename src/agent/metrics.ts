/** Agent metrics, registered on the Registry passed in. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface AgentMetrics {
  sessions: Gauge<'gateway'>;
  reconnects: Counter<'gateway'>;
  streams: Counter<'protocol' | 'result'>;
  activeStreams: Gauge;
  tunnelRtt: Histogram<'gateway'>;
  certificateExpiry: Gauge<'gateway'>;
  tlsCertificateExpiry: Gauge<'hostname'>;
}

export function createAgentMetrics(registry: Registry): AgentMetrics {
  const registers = [registry];
  return {
    sessions: new Gauge({
      name: 'webgw_agent_sessions',
      help: 'Tunnel sessions connected, by gateway',
      labelNames: ['gateway'],
      registers,
    }),
    reconnects: new Counter({
      name: 'webgw_agent_reconnects_total',
      help: 'Tunnel dial attempts after a failure or loss',
      labelNames: ['gateway'],
      registers,
    }),
    streams: new Counter({
      name: 'webgw_agent_streams_total',
      help: 'Streams from gateways, by result',
      labelNames: ['protocol', 'result'],
      registers,
    }),
    activeStreams: new Gauge({
      name: 'webgw_agent_active_streams',
      help: 'Streams being relayed to backends',
      registers,
    }),
    tunnelRtt: new Histogram({
      name: 'webgw_agent_tunnel_rtt_seconds',
      help: 'Tunnel round-trip time',
      labelNames: ['gateway'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    certificateExpiry: new Gauge({
      name: 'webgw_agent_certificate_expiry_timestamp_seconds',
      help: 'notAfter of the agent certificate in use, by gateway',
      labelNames: ['gateway'],
      registers,
    }),
    tlsCertificateExpiry: new Gauge({
      name: 'webgw_agent_tls_certificate_expiry_timestamp_seconds',
      help: 'notAfter of the certificate a TLS route the agent terminates is served with, by hostname',
      labelNames: ['hostname'],
      registers,
    }),
  };
}
