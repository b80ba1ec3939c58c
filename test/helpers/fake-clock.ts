import type { Clock, Timer } from '../../src/common/clock.ts';

/** A clock that moves only when told to: timers fire in `advance()`. */
export class FakeClock implements Clock {
  private t = 0;
  private readonly timers: Array<{ at: number; fn: () => void; cancelled: boolean }> = [];

  now(): number {
    return this.t;
  }

  date(): Date {
    return new Date(Date.UTC(2026, 0, 1) + this.t);
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const timer = { at: this.t + ms, fn, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }

  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      const next = this.timers.filter((x) => !x.cancelled && x.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.t = next.at;
      next.cancelled = true;
      next.fn();
    }
    this.t = until;
  }
}
