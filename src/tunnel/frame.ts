/**
 * Tunnel frame codec. A WebSocket binary message carries one or more whole frames; a frame never
 * spans messages. Header (10 bytes, big endian):
 *
 *   0      1      2..5        6..9
 *   type   flags  stream id   payload length
 *
 * Stream 0 is the session itself (PING, PONG, GOAWAY). Limits are enforced while decoding so a
 * hostile peer cannot make us allocate or loop on its say-so.
 */
import { WebgwError } from '../common/errors.ts';

export const FrameType = {
  OPEN: 1,
  DATA: 2,
  WINDOW: 3,
  FIN: 4,
  RESET: 5,
  PING: 6,
  PONG: 7,
  GOAWAY: 8,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** WINDOW with ACK accepts an OPEN: the payload is the acceptor's initial receive window. */
export const FLAG_ACK = 0x01;
/**
 * DATA with BLOCKED: this frame used the sender's last credit while it had more to send. The
 * receiver grows the window when it sees this and its consumer keeps up (cf. QUIC's
 * STREAM_DATA_BLOCKED, RFC 9000 §19.13).
 */
export const FLAG_BLOCKED = 0x02;

export const HEADER_BYTES = 10;
/** DATA frames are small so that streams interleave fairly (docs/architecture.md, Tunnel). */
export const MAX_DATA_PAYLOAD = 64 * 1024;
/** Control payloads (OPEN, RESET, GOAWAY, ...) are tiny; anything bigger is hostile. */
export const MAX_CONTROL_PAYLOAD = 1024;
export const MAX_STREAM_ID = 0xffffffff;

export interface Frame {
  type: FrameType;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export function encodeHeader(type: FrameType, flags: number, streamId: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header[0] = type;
  header[1] = flags;
  header.writeUInt32BE(streamId, 2);
  header.writeUInt32BE(length, 6);
  return header;
}

/** Writes a frame header into `into` at `offset`; returns the offset after it. */
export function writeHeader(
  into: Buffer,
  offset: number,
  type: FrameType,
  flags: number,
  streamId: number,
  length: number,
): number {
  into[offset] = type;
  into[offset + 1] = flags;
  into.writeUInt32BE(streamId, offset + 2);
  into.writeUInt32BE(length, offset + 6);
  return offset + HEADER_BYTES;
}

/** One frame as a single buffer (header + payload); used for control frames. */
export function encodeFrame(type: FrameType, flags: number, streamId: number, payload?: Buffer): Buffer {
  const length = payload?.length ?? 0;
  const out = Buffer.allocUnsafe(HEADER_BYTES + length);
  out[0] = type;
  out[1] = flags;
  out.writeUInt32BE(streamId, 2);
  out.writeUInt32BE(length, 6);
  if (payload) payload.copy(out, HEADER_BYTES);
  return out;
}

/**
 * Incremental decoder: one message's bytes may arrive in several chunks (the transport hands on
 * TLS records as they are decrypted instead of gathering whole messages). A DATA payload is
 * delivered as views of the chunks, in several pieces when it spans chunks; only the last piece
 * carries the frame's flags. Control payloads (≤ 1 KiB) are gathered into one buffer. A frame must
 * end where its message ends.
 */
export class FrameDecoder {
  private readonly onFrame: (frame: Frame) => void;
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  /** The frame whose payload is being read; undefined between frames. */
  private type: FrameType | 0 = 0;
  private flags = 0;
  private streamId = 0;
  private remaining = 0;
  private control: Buffer | undefined;
  private controlFill = 0;

  constructor(onFrame: (frame: Frame) => void) {
    this.onFrame = onFrame;
  }

  push(chunk: Buffer, endOfMessage: boolean): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.type === 0) {
        const n = Math.min(HEADER_BYTES - this.headerFill, chunk.length - offset);
        chunk.copy(this.header, this.headerFill, offset, offset + n);
        this.headerFill += n;
        offset += n;
        if (this.headerFill === HEADER_BYTES) this.startFrame();
        continue;
      }
      const n = Math.min(this.remaining, chunk.length - offset);
      const piece = chunk.subarray(offset, offset + n);
      offset += n;
      this.remaining -= n;
      if (this.type === FrameType.DATA) {
        this.onFrame({
          type: FrameType.DATA,
          flags: this.remaining === 0 ? this.flags : 0,
          streamId: this.streamId,
          payload: piece,
        });
      } else {
        piece.copy(this.control as Buffer, this.controlFill);
        this.controlFill += n;
      }
      if (this.remaining === 0) this.endFrame();
    }
    if (endOfMessage && (this.type !== 0 || this.headerFill > 0)) {
      throw this.headerFill > 0
        ? new WebgwError('WEBGW_ERR_PROTOCOL', `truncated frame header (${this.headerFill} bytes)`)
        : new WebgwError(
            'WEBGW_ERR_PROTOCOL',
            `frame payload truncated (${this.remaining} bytes missing at the end of the message)`,
          );
    }
  }

  private startFrame(): void {
    const h = this.header;
    const type = h[0] as number;
    const streamId = h.readUInt32BE(2);
    const length = h.readUInt32BE(6);
    if (type < FrameType.OPEN || type > FrameType.GOAWAY) {
      throw new WebgwError('WEBGW_ERR_PROTOCOL', `unknown frame type ${type}`);
    }
    const limit = type === FrameType.DATA ? MAX_DATA_PAYLOAD : MAX_CONTROL_PAYLOAD;
    if (length > limit) {
      throw new WebgwError('WEBGW_ERR_PROTOCOL', `frame type ${type} payload of ${length} bytes exceeds ${limit}`);
    }
    const isSessionFrame = type === FrameType.PING || type === FrameType.PONG || type === FrameType.GOAWAY;
    if (isSessionFrame !== (streamId === 0)) {
      throw new WebgwError('WEBGW_ERR_PROTOCOL', `frame type ${type} on stream ${streamId}`);
    }
    this.headerFill = 0;
    this.type = type as FrameType;
    this.flags = h[1] as number;
    this.streamId = streamId;
    this.remaining = length;
    if (type !== FrameType.DATA) {
      this.control = Buffer.allocUnsafe(length);
      this.controlFill = 0;
    }
    if (length === 0) this.endFrame(true);
  }

  private endFrame(empty = false): void {
    const type = this.type as FrameType;
    this.type = 0;
    if (type === FrameType.DATA) {
      if (empty) this.onFrame({ type, flags: this.flags, streamId: this.streamId, payload: EMPTY });
      return;
    }
    const payload = this.control as Buffer;
    this.control = undefined;
    this.onFrame({ type, flags: this.flags, streamId: this.streamId, payload });
  }
}

const EMPTY = Buffer.alloc(0);

/** RESET and GOAWAY codes. */
export const ResetCode = {
  CANCEL: 0,
  REFUSED: 1,
  BACKEND_UNREACHABLE: 2,
  NO_ROUTE: 3,
  FLOW_CONTROL: 4,
  PROTOCOL: 5,
  STREAM_LIMIT: 6,
  INTERNAL: 7,
  SHUTDOWN: 8,
} as const;
export type ResetCode = (typeof ResetCode)[keyof typeof ResetCode];

const MAX_REASON_BYTES = 256;

/** RESET and GOAWAY payload: u16 code, then an optional UTF-8 reason. */
export function encodeCodeReason(code: number, reason = ''): Buffer {
  const text = Buffer.from(reason.slice(0, MAX_REASON_BYTES), 'utf8').subarray(0, MAX_REASON_BYTES);
  const out = Buffer.allocUnsafe(2 + text.length);
  out.writeUInt16BE(code, 0);
  text.copy(out, 2);
  return out;
}

export function decodeCodeReason(payload: Buffer): { code: number; reason: string } {
  if (payload.length < 2) throw new WebgwError('WEBGW_ERR_PROTOCOL', 'RESET/GOAWAY payload shorter than 2 bytes');
  return { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString('utf8') };
}

export function encodeU32(value: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(value, 0);
  return out;
}

export function decodeU32(payload: Buffer, what: string): number {
  if (payload.length !== 4) throw new WebgwError('WEBGW_ERR_PROTOCOL', `${what} payload must be 4 bytes`);
  return payload.readUInt32BE(0);
}
