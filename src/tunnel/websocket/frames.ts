/**
 * RFC 6455 framing for the tunnel's WebSocket: binary messages, ping/pong and close, no
 * extensions. The parser streams message payloads on as they arrive (a view of each socket chunk,
 * unmasked in place) instead of reassembling whole messages, so a message of 256 KiB that arrives
 * as sixteen TLS records costs no extra buffer.
 */
import { WebgwError } from '../../common/errors.ts';

export const Opcode = { CONTINUATION: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

/** Close codes used here (RFC 6455 §7.4.1). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  NO_STATUS: 1005,
  ABNORMAL: 1006,
  TOO_BIG: 1009,
} as const;

/** The largest header: 2 bytes, a 64-bit length and a masking key. */
export const MAX_HEADER_BYTES = 14;
const MAX_CONTROL_PAYLOAD = 125;

/** A violation of RFC 6455 or of our limits; `code` is what the close frame says. */
export class WebSocketProtocolError extends WebgwError {
  declare readonly closeCode: number;
  constructor(closeCode: number, message: string) {
    super('WEBGW_ERR_WEBSOCKET_PROTOCOL', message, { closeCode });
  }
}

/**
 * Writes the header of one unfragmented frame so that it ends exactly at `end` (the payload
 * follows); returns where it starts. A client masks with the all-zero key: over TLS masking
 * protects nothing (it exists against cache poisoning by scripts in browsers), and a zero key
 * leaves the payload as it is, so it needs no copy.
 */
export function writeFrameHeader(
  into: Buffer,
  end: number,
  opcode: number,
  payloadLength: number,
  masked: boolean,
): number {
  const lengthBytes = payloadLength < 126 ? 0 : payloadLength < 65536 ? 2 : 8;
  const start = end - 2 - lengthBytes - (masked ? 4 : 0);
  into[start] = 0x80 | opcode;
  const maskBit = masked ? 0x80 : 0;
  if (lengthBytes === 0) {
    into[start + 1] = maskBit | payloadLength;
  } else if (lengthBytes === 2) {
    into[start + 1] = maskBit | 126;
    into.writeUInt16BE(payloadLength, start + 2);
  } else {
    into[start + 1] = maskBit | 127;
    into.writeUInt32BE(Math.floor(payloadLength / 2 ** 32), start + 2);
    into.writeUInt32BE(payloadLength >>> 0, start + 6);
  }
  if (masked) into.fill(0, end - 4, end);
  return start;
}

/** One whole control frame (close, ping, pong) as its own buffer. */
export function controlFrame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  const body = payload.subarray(0, MAX_CONTROL_PAYLOAD);
  const headerBytes = 2 + (masked ? 4 : 0);
  const out = Buffer.allocUnsafe(headerBytes + body.length);
  writeFrameHeader(out, headerBytes, opcode, body.length, masked);
  body.copy(out, headerBytes);
  return out;
}

export function closePayload(code: number, reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, MAX_CONTROL_PAYLOAD - 2);
  const out = Buffer.allocUnsafe(2 + text.length);
  out.writeUInt16BE(code, 0);
  text.copy(out, 2);
  return out;
}

export interface ParserHandlers {
  /** Bytes of a binary message, in order; `endOfMessage` on its last piece. */
  data(chunk: Buffer, endOfMessage: boolean): void;
  control(opcode: number, payload: Buffer): void;
}

const EMPTY = Buffer.alloc(0);

/**
 * Incremental frame parser. `role` is our side: a server requires masked frames, a client
 * unmasked ones (RFC 6455 §5.1). Throws WebSocketProtocolError on the first violation.
 */
export class WebSocketParser {
  private readonly expectMasked: boolean;
  private readonly maxMessageBytes: number;
  private readonly handlers: ParserHandlers;
  private readonly header = Buffer.alloc(MAX_HEADER_BYTES);
  private headerFill = 0;
  private inFrame = false;
  private opcode = 0;
  private fin = false;
  private remaining = 0;
  private mask: Buffer | undefined;
  private maskOffset = 0;
  private control: Buffer | undefined;
  private controlFill = 0;
  /** Inside a fragmented binary message: bytes so far. */
  private inMessage = false;
  private messageBytes = 0;

  constructor(role: 'client' | 'server', maxMessageBytes: number, handlers: ParserHandlers) {
    this.expectMasked = role === 'server';
    this.maxMessageBytes = maxMessageBytes;
    this.handlers = handlers;
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (!this.inFrame) {
        offset = this.readHeader(chunk, offset);
        continue;
      }
      const n = Math.min(this.remaining, chunk.length - offset);
      const piece = chunk.subarray(offset, offset + n);
      offset += n;
      this.remaining -= n;
      if (this.mask) this.unmask(piece);
      if (this.control) {
        piece.copy(this.control, this.controlFill);
        this.controlFill += n;
      } else {
        this.handlers.data(piece, this.fin && this.remaining === 0);
      }
      if (this.remaining === 0) this.endFrame();
    }
  }

  private readHeader(chunk: Buffer, offset: number): number {
    // Gather the two fixed bytes first: they tell how long the rest of the header is.
    const need = this.headerFill < 2 ? 2 : this.headerLength();
    const n = Math.min(need - this.headerFill, chunk.length - offset);
    chunk.copy(this.header, this.headerFill, offset, offset + n);
    this.headerFill += n;
    if (this.headerFill === 2 && this.headerLength() > 2) return offset + n;
    if (this.headerFill === this.headerLength()) this.startFrame();
    return offset + n;
  }

  private headerLength(): number {
    const len7 = (this.header[1] as number) & 0x7f;
    const masked = ((this.header[1] as number) & 0x80) !== 0;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
  }

  private startFrame(): void {
    const h = this.header;
    const b0 = h[0] as number;
    const b1 = h[1] as number;
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    let pos = 2;
    let length = len7;
    if (len7 === 126) {
      length = h.readUInt16BE(2);
      pos = 4;
    } else if (len7 === 127) {
      const high = h.readUInt32BE(2);
      if (high > 0x1fffff) throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, 'frame length exceeds 2^53');
      length = high * 2 ** 32 + h.readUInt32BE(6);
      pos = 10;
    }
    if (b0 & 0x70)
      throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, 'reserved bits set (no extension was negotiated)');
    if (masked !== this.expectMasked) {
      throw new WebSocketProtocolError(
        CloseCode.PROTOCOL_ERROR,
        this.expectMasked ? 'unmasked frame from a client' : 'masked frame from a server',
      );
    }
    if (opcode >= 0x8) {
      if (opcode !== Opcode.CLOSE && opcode !== Opcode.PING && opcode !== Opcode.PONG) {
        throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, `unknown opcode ${opcode}`);
      }
      if (!fin || length > MAX_CONTROL_PAYLOAD)
        throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, 'fragmented or oversized control frame');
      this.control = Buffer.allocUnsafe(length);
      this.controlFill = 0;
    } else {
      if (opcode === Opcode.TEXT)
        throw new WebSocketProtocolError(
          CloseCode.UNSUPPORTED_DATA,
          'text messages are not part of the tunnel protocol',
        );
      if (opcode === Opcode.BINARY && this.inMessage)
        throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, 'new message inside a fragmented one');
      if (opcode === Opcode.CONTINUATION && !this.inMessage)
        throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, 'continuation without a message');
      if (opcode !== Opcode.BINARY && opcode !== Opcode.CONTINUATION)
        throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, `unknown opcode ${opcode}`);
      if (opcode === Opcode.BINARY) this.messageBytes = 0;
      this.messageBytes += length;
      if (this.messageBytes > this.maxMessageBytes) {
        throw new WebSocketProtocolError(CloseCode.TOO_BIG, `message larger than ${this.maxMessageBytes} bytes`);
      }
      this.inMessage = !fin;
      this.control = undefined;
    }
    const key = masked ? h.subarray(pos, pos + 4) : undefined;
    this.mask = key && (key[0]! | key[1]! | key[2]! | key[3]!) !== 0 ? Buffer.from(key) : undefined;
    this.maskOffset = 0;
    this.opcode = opcode;
    this.fin = fin;
    this.remaining = length;
    this.headerFill = 0;
    this.inFrame = true;
    if (length === 0) {
      if (!this.control && fin) this.handlers.data(EMPTY, true);
      this.endFrame();
    }
  }

  private unmask(piece: Buffer): void {
    const mask = this.mask as Buffer;
    let m = this.maskOffset;
    for (let i = 0; i < piece.length; i++) {
      piece[i] = (piece[i] as number) ^ (mask[m] as number);
      m = (m + 1) & 3;
    }
    this.maskOffset = m;
  }

  private endFrame(): void {
    this.inFrame = false;
    const control = this.control;
    if (control) {
      this.control = undefined;
      this.handlers.control(this.opcode, control);
    }
  }
}
