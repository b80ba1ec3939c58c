/**
 * Exponential backoff with jitter for reconnects: the n-th delay is drawn uniformly from
 * [base/2, base] with base = min(max, initial·2ⁿ), so a fleet of agents that lost the same
 * gateway does not come back in lockstep, and no delay exceeds `maxMs`.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  random?: () => number;
}

export class Backoff {
  private readonly opts: Required<BackoffOptions>;
  private attempt = 0;

  constructor(opts: BackoffOptions) {
    this.opts = { random: Math.random, ...opts };
  }

  next(): number {
    const base = Math.min(this.opts.maxMs, this.opts.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.round(base / 2 + this.opts.random() * (base / 2));
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
