/**
 * How many bytes of receive window may be outstanding: the memory a peer can make us hold
 * (credit granted and not yet consumed by the local reader). A session draws every stream's
 * window from its budget; a budget may draw from a parent too, so that the gateway bounds each
 * tenant (one budget per agent identity, shared by all of that identity's sessions) and all
 * tenants together (the gateway's own budget).
 *
 * Ordinary reservations stop at 80% of the limit; the rest is kept for the small windows that
 * keep new streams moving when the budget is spent (`reserveMinimum`). Past the limit nothing
 * more is granted: the stream is refused.
 */
const SOFT_SHARE = 0.8;

export class ReceiveBudget {
  readonly limit: number;
  private readonly parent: ReceiveBudget | undefined;
  private usedBytes = 0;

  constructor(limit: number, parent?: ReceiveBudget) {
    this.limit = limit;
    this.parent = parent;
  }

  get used(): number {
    return this.usedBytes;
  }

  /** Grants up to `bytes` within the soft share (here and in the parent); returns what was granted. */
  reserve(bytes: number): number {
    const granted = Math.max(0, Math.min(bytes, this.softRoom()));
    this.take(granted);
    return granted;
  }

  /** Grants exactly `bytes` up to the hard limit (here and in the parent), or nothing. */
  reserveMinimum(bytes: number): boolean {
    if (this.hardRoom() < bytes) return false;
    this.take(bytes);
    return true;
  }

  release(bytes: number): void {
    this.usedBytes -= bytes;
    this.parent?.release(bytes);
  }

  private softRoom(): number {
    const own = Math.floor(this.limit * SOFT_SHARE) - this.usedBytes;
    return this.parent ? Math.min(own, this.parent.softRoom()) : own;
  }

  private hardRoom(): number {
    const own = this.limit - this.usedBytes;
    return this.parent ? Math.min(own, this.parent.hardRoom()) : own;
  }

  private take(bytes: number): void {
    this.usedBytes += bytes;
    this.parent?.take(bytes);
  }
}
