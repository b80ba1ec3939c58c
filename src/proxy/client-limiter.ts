/**
 * Public connections per client address, and in all, across every public listener of the
 * gateway (HTTP, TLS, TCP): one client cannot hold more than its share of the sockets and
 * memory that every tenant's visitors share. A connection over either bound is closed at once;
 * the metric counts it and the log says so at most once per interval.
 *
 * Addresses are counted as they are (an IPv4 address, an IPv6 address); IPv4-mapped IPv6
 * addresses count as their IPv4 address.
 */
import type { Socket } from 'node:net';
import type { Clock } from '../common/clock.ts';
import type { Logger } from '../common/log.ts';
import { LogThrottle } from '../common/log-throttle.ts';
import { plainAddress } from '../common/net.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface ClientLimits {
  maxConnectionsPerClient: number;
  maxConnections: number;
}

export class ClientLimiter {
  private readonly perClient = new Map<string, number>();
  private total = 0;
  private readonly limits: ClientLimits;
  private readonly metrics: GatewayMetrics;
  private readonly refusals: LogThrottle;

  constructor(limits: ClientLimits, metrics: GatewayMetrics, logger: Logger, clock: Clock) {
    this.limits = limits;
    this.metrics = metrics;
    this.refusals = new LogThrottle(logger, clock);
  }

  /** Counts `socket` until it closes, or closes it now and returns false when a bound is reached. */
  admit(socket: Socket, protocol: 'http' | 'tls' | 'tcp'): boolean {
    const client = plainAddress(socket.remoteAddress);
    const mine = this.perClient.get(client) ?? 0;
    const reason =
      this.total >= this.limits.maxConnections
        ? 'gateway-full'
        : mine >= this.limits.maxConnectionsPerClient
          ? 'per-client'
          : undefined;
    if (reason) {
      this.metrics.refusedConnections.inc({ protocol, reason });
      this.refusals.warn(
        reason,
        reason === 'per-client'
          ? 'connection refused: the client holds the most connections allowed'
          : 'connection refused: the gateway holds the most connections allowed',
        {
          client,
          limit: reason === 'per-client' ? this.limits.maxConnectionsPerClient : this.limits.maxConnections,
        },
      );
      socket.on('error', () => {});
      socket.destroy();
      return false;
    }
    this.perClient.set(client, mine + 1);
    this.total++;
    socket.once('close', () => {
      this.total--;
      const left = (this.perClient.get(client) ?? 1) - 1;
      if (left > 0) this.perClient.set(client, left);
      else this.perClient.delete(client);
    });
    return true;
  }
}
