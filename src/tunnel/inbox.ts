/**
 * Received DATA a stream's reader has not asked for yet. Bytes are what flow control counts, so
 * the memory they take must follow the bytes, not the number of frames: a peer that fills a
 * 256 KiB window with 1-byte frames would otherwise make us hold 262,144 Buffer objects, each a
 * view that keeps its whole socket read alive (issue 12: 16 such streams grew the gateway by
 * 520-650 MiB). Small payloads are copied into shared blocks; a large payload that is a small view
 * of a larger buffer is copied out so it does not pin its parent. Only data that has to wait
 * comes here: a reader that keeps up gets each payload as it is, without a copy.
 */
const BLOCK_BYTES = 16 * 1024;
/** A payload below this is copied into a block rather than kept as its own Buffer. */
const SMALL_BYTES = 4 * 1024;
/** A view keeping more than this multiple of its own size alive is copied out. */
const MAX_PIN_RATIO = 4;

/**
 * A payload the reader takes at once may stay a view, unless it would pin a much larger buffer
 * (a reader can still stop reading right after taking it).
 */
export function detached(payload: Buffer): Buffer {
  return pins(payload) ? Buffer.from(payload) : payload;
}

function pins(payload: Buffer): boolean {
  return payload.buffer.byteLength > MAX_PIN_RATIO * Math.max(payload.length, SMALL_BYTES);
}

export class Inbox {
  private readonly chunks: Buffer[] = [];
  /** The last block, still being filled with small payloads. */
  private open: Buffer | undefined;
  private openUsed = 0;
  private bytes = 0;

  get length(): number {
    return this.bytes;
  }

  add(payload: Buffer): void {
    if (payload.length === 0) return;
    this.bytes += payload.length;
    if (payload.length < SMALL_BYTES) {
      this.addSmall(payload);
      return;
    }
    this.seal();
    this.chunks.push(detached(payload));
  }

  /** Everything held, oldest first, as few chunks as it was stored in; the inbox is empty after. */
  takeAll(): Buffer[] {
    this.seal();
    const out = this.chunks.splice(0);
    this.bytes = 0;
    return out;
  }

  private addSmall(payload: Buffer): void {
    let offset = 0;
    while (offset < payload.length) {
      if (!this.open || this.openUsed === this.open.length) {
        this.seal();
        // Not from Node's shared pool: a block must not pin other allocations, nor they it.
        this.open = Buffer.allocUnsafeSlow(BLOCK_BYTES);
        this.openUsed = 0;
      }
      const n = payload.copy(this.open, this.openUsed, offset);
      this.openUsed += n;
      offset += n;
    }
  }

  /** Closes the open block: what it holds becomes a chunk of its own. */
  private seal(): void {
    if (!this.open) return;
    if (this.openUsed > 0) this.chunks.push(this.open.subarray(0, this.openUsed));
    this.open = undefined;
    this.openUsed = 0;
  }
}
