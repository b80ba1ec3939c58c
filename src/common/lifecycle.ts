/**
 * One lifecycle for everything that holds sockets, sessions, timers or watches
 * (docs/architecture.md, Code conventions), as undici's dispatchers have it:
 * - `close()` is graceful: stop taking new work, let what runs finish (bounded by the caller's
 *   timeout), then release. It is memoized: every call returns the same promise.
 * - `destroy(err?)` is immediate: release everything now. It happens once, and it settles a
 *   `close()` still draining.
 * Objects with nothing to drain (a file watcher, a timer) have only a synchronous, idempotent
 * `close()`.
 */

/** What a long-running command drains on SIGTERM and destroys on the second signal. */
export interface Closable {
  close(timeoutMs?: number): Promise<void>;
  destroy(err?: Error): void;
}

/** The bookkeeping of the contract above; a class keeps one and passes its drain and teardown. */
export class Lifecycle {
  private closing: Promise<void> | undefined;
  private destroyedOnce = false;
  private wake: () => void = () => {};
  private readonly destroyedSignal = new Promise<void>((resolve) => (this.wake = resolve));

  /** True from the first close() or destroy(): take no new work. */
  get stopping(): boolean {
    return this.closing !== undefined || this.destroyedOnce;
  }

  get destroyed(): boolean {
    return this.destroyedOnce;
  }

  /**
   * Runs `drain` on the first call (synchronously, so that it stops accepting at once) and returns
   * its promise to every call; a destroy() meanwhile settles it.
   */
  close(drain: () => Promise<void>): Promise<void> {
    this.closing ??= this.destroyedOnce ? Promise.resolve() : Promise.race([drain(), this.destroyedSignal]);
    return this.closing;
  }

  /** Runs `teardown` once; later calls do nothing. */
  destroy(teardown: () => void): void {
    if (this.destroyedOnce) return;
    this.destroyedOnce = true;
    try {
      teardown();
    } finally {
      this.wake();
    }
  }
}
