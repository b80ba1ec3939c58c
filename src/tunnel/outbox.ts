/**
 * What a session has to send, and how it becomes a message: control frames (WINDOW, RESET, PING,
 * ...) go first, then DATA taken round-robin, one frame (≤ 64 KiB) per stream per turn, copied
 * into the message buffer the session hands in. Bounded: control frames queue up to
 * `maxControlBytes` (more means the peer makes us answer faster than it reads).
 */
import { FLAG_BLOCKED, FrameType, HEADER_BYTES, writeHeader } from './frame.ts';
import type { TunnelStream } from './stream.ts';

export class Outbox {
  private control: Buffer[] = [];
  private controlBytes = 0;
  /** Streams with something to send, in round-robin order (Set keeps insertion order). */
  private readonly ready = new Set<TunnelStream>();
  private readonly maxControlBytes: number;

  constructor(maxControlBytes: number) {
    this.maxControlBytes = maxControlBytes;
  }

  get hasWork(): boolean {
    return this.control.length > 0 || this.ready.size > 0;
  }

  /** Queues a control frame; false when the queue is over its bound. */
  queueControl(frame: Buffer): boolean {
    this.control.push(frame);
    this.controlBytes += frame.length;
    return this.controlBytes <= this.maxControlBytes;
  }

  markReady(stream: TunnelStream): void {
    this.ready.add(stream);
  }

  forget(stream: TunnelStream): void {
    this.ready.delete(stream);
  }

  clear(): void {
    this.ready.clear();
    this.control = [];
    this.controlBytes = 0;
  }

  /**
   * Copies queued control frames, then DATA round-robin, into `into` after `start`; returns where
   * the message ends (`start` when there was nothing to send).
   */
  fill(into: Buffer, start: number): number {
    let offset = start;
    const limit = into.length;
    let taken = 0;
    for (const frame of this.control) {
      if (offset + frame.length > limit) break;
      frame.copy(into, offset);
      offset += frame.length;
      this.controlBytes -= frame.length;
      taken += 1;
    }
    if (taken > 0) this.control = taken === this.control.length ? [] : this.control.slice(taken);
    while (limit - offset > HEADER_BYTES && this.ready.size > 0) {
      const stream = this.ready.values().next().value as TunnelStream;
      this.ready.delete(stream);
      if (stream.destroyed && !stream.hasSendable) continue;
      const data = stream.takeData(limit - offset - HEADER_BYTES);
      if (data === undefined) continue;
      if (data === 'fin') {
        offset = writeHeader(into, offset, FrameType.FIN, 0, stream.id, 0);
      } else {
        offset = writeHeader(
          into,
          offset,
          FrameType.DATA,
          stream.lastTakeBlocked ? FLAG_BLOCKED : 0,
          stream.id,
          data.length,
        );
        offset += data.copy(into, offset);
      }
      // Back of the queue: one frame per stream per turn (fairness).
      if (stream.hasSendable) this.ready.add(stream);
    }
    return offset;
  }
}
