/**
 * The message transport under a tunnel session. Production uses a WebSocket over TLS
 * (websocket/transport.ts); the seam keeps the session free of WebSocket details and lets unit
 * tests pair two sessions in memory.
 */

/** The WebSocket path of the tunnel endpoint; an endpoint URL without a path gets this one. */
export const TUNNEL_PATH = '/v1/tunnel';

/** Largest message either side accepts; the session sends ≤ 256 KiB plus its frame headers. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

export interface MessageTransport {
  /** Bytes every outgoing buffer keeps free in front of the message, for the transport's header. */
  readonly headroom: number;
  /**
   * Sends `buffer.subarray(headroom, end)` as one binary message; the transport may write its
   * header into the headroom. `cb` runs once the transport no longer needs `buffer` (handed to
   * the kernel or TLS, or failed): the caller may reuse it then.
   */
  send(buffer: Buffer, end: number, cb: (err?: Error) => void): void;
  /** Graceful close after queued messages; `protocolError` uses close code 1002 (RFC 6455 §7.4.1). */
  close(protocolError?: boolean): void;
  /** Immediate close. */
  terminate(): void;
  /**
   * Message bytes as they arrive: one message may come in several chunks, `endOfMessage` marks
   * its last. The handler may keep the chunk (views of it end up in stream buffers).
   */
  onData(handler: (chunk: Buffer, endOfMessage: boolean) => void): void;
  /** Called exactly once, when the transport is gone. */
  onClose(handler: (err?: Error) => void): void;
}
