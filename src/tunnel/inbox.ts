/**
 * Received DATA a stream's reader has not asked for yet. Bytes are what flow control counts, so
 * the memory they take must follow the bytes, not the number of frames: a peer that fills a
 * 256 KiB window with 1-byte frames would otherwise make us hold 262,144 Buffer objects, each a
 * view that keeps its whole socket read alive (issue 12: 16 such streams grew the gateway by
 * 520-650 MiB). Small payloads are copied into shared blocks; a large payload that is a small view
 * of a larger buffer is copied out so it does not pin its parent. A reader that keeps up gets
 * what arrived in one turn of the event loop as few chunks (one per socket read, not one per
 * frame), and a lone small payload as it came, without a copy.
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
  /** The last chunk is one small payload kept as it came (a lone one is not worth a block). */
  private lastIsLoneSmall = false;
  private bytes = 0;

  get length(): number {
    return this.bytes;
  }

  add(payload: Buffer): void {
    if (payload.length === 0) return;
    this.bytes += payload.length;
    if (payload.length >= SMALL_BYTES) {
      this.seal();
      this.chunks.push(detached(payload));
      return;
    }
    if (!this.open && !this.lastIsLoneSmall) {
      this.chunks.push(detached(payload));
      this.lastIsLoneSmall = true;
      return;
    }
    // A second small payload before the reader took the first: from now on they share blocks.
    if (this.lastIsLoneSmall) {
      this.lastIsLoneSmall = false;
      this.addSmall(this.chunks.pop() as Buffer);
    }
    this.addSmall(payload);
  }

  /** Everything held, oldest first, as few chunks as it was stored in; the inbox is empty after. */
  takeAll(): Buffer[] {
    this.seal();
    this.lastIsLoneSmall = false;
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
    this.lastIsLoneSmall = false;
    if (!this.open) return;
    if (this.openUsed > 0) this.chunks.push(this.open.subarray(0, this.openUsed));
    this.open = undefined;
    this.openUsed = 0;
  }
}
