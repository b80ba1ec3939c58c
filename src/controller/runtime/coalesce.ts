/**
 * Runs `fn` once, `delayMs` after the first of a burst of triggers: a thousand events in a second
 * become one sweep over every key instead of a thousand (issue 15: every ExposedService event
 * re-queued every ExposedService).
 */
import type { Clock, Timer } from '../../common/clock.ts';

export class Coalesced {
  private readonly clock: Clock;
  private readonly delayMs: number;
  private readonly fn: () => void;
  private timer: Timer | undefined;

  constructor(clock: Clock, delayMs: number, fn: () => void) {
    this.clock = clock;
    this.delayMs = delayMs;
    this.fn = fn;
  }

  trigger(): void {
    this.timer ??= this.clock.setTimeout(() => {
      this.timer = undefined;
      this.fn();
    }, this.delayMs);
  }

  cancel(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }
}
