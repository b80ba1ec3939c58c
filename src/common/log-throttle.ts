/**
 * Log lines that anyone on the Internet can cause (refused handshakes, failing backends) are
 * throttled: at most one line per key and interval, the next one saying how many were dropped.
 * Metrics still count every event; the log only needs to show that it happens and why.
 * The keys are bounded too, so random input cannot grow the table.
 */
import type { Clock } from './clock.ts';
import type { LogFields, Logger } from './log.ts';

const MAX_KEYS = 1024;

export class LogThrottle {
  private readonly last = new Map<string, { at: number; dropped: number }>();
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly intervalMs: number;

  constructor(log: Logger, clock: Clock, intervalMs = 10_000) {
    this.log = log;
    this.clock = clock;
    this.intervalMs = intervalMs;
  }

  warn(key: string, msg: string, fields: LogFields = {}): void {
    const now = this.clock.now();
    const seen = this.last.get(key);
    if (seen && now - seen.at < this.intervalMs) {
      seen.dropped++;
      return;
    }
    if (!seen && this.last.size >= MAX_KEYS) this.prune(now);
    const dropped = seen?.dropped ?? 0;
    this.last.set(key, { at: now, dropped: 0 });
    this.log.warn(msg, dropped > 0 ? { ...fields, suppressed: dropped } : fields);
  }

  private prune(now: number): void {
    for (const [key, seen] of this.last) if (now - seen.at >= this.intervalMs) this.last.delete(key);
    // Still full: forget the oldest half; at worst a line is logged a little more often.
    if (this.last.size >= MAX_KEYS)
      for (const key of [...this.last.keys()].slice(0, MAX_KEYS / 2)) this.last.delete(key);
  }
}
