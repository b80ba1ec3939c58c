/**
 * Time as a dependency (docs/architecture.md, Code conventions): sessions, backoff and certificate timers take
 * a Clock so tests can drive them without sleeping.
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds, monotonic where it matters (RTT), comparable with `now()` calls only. */
  now(): number;
  /** Wall-clock time, for certificate validity. */
  date(): Date;
  setTimeout(fn: () => void, ms: number): Timer;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  date: () => new Date(),
  setTimeout(fn, ms) {
    // Node timers overflow above 2^31-1 ms and then fire at once; clamp (about 24.8 days).
    const t = setTimeout(fn, Math.min(Math.max(0, ms), 0x7fffffff));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};
