/**
 * Runs `fn` once, `delayMs` after the first of a burst of triggers: a thousand events in a second
 * become one sweep over every key instead of a thousand (issue 15: every ExposedService event
 * re-queued every ExposedService).
 */
import type { Clock, Timer } from '../../common/clock.ts';

export class Coalesced {
  private readonly clock: Clock;
  /** A number, or asked at each trigger (a sweep paced by what its work costs). */
  private readonly delayMs: number | (() => number);
  private readonly fn: () => void;
  private timer: Timer | undefined;

  constructor(clock: Clock, delayMs: number | (() => number), fn: () => void) {
    this.clock = clock;
    this.delayMs = delayMs;
    this.fn = fn;
  }

  trigger(): void {
    this.timer ??= this.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.fn();
      },
      typeof this.delayMs === 'number' ? this.delayMs : this.delayMs(),
    );
  }

  cancel(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }
}
