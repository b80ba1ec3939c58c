/**
 * The message transport under a tunnel session. Production uses a WebSocket (`ws`); the seam
 * keeps the session free of WebSocket details and lets unit tests pair two sessions in memory.
 */
import type { WebSocket } from 'ws';

/** The WebSocket path of the tunnel endpoint; an endpoint URL without a path gets this one. */
export const TUNNEL_PATH = '/v1/tunnel';

export interface MessageTransport {
  /** Sends one binary message; `cb` runs once it was handed to the kernel (or failed). */
  send(message: Buffer, cb: (err?: Error) => void): void;
  /** Graceful close after queued messages; `protocolError` uses close code 1002 (RFC 6455 §7.4.1). */
  close(protocolError?: boolean): void;
  /** Immediate close. */
  terminate(): void;
  onMessage(handler: (message: Buffer) => void): void;
  /** Called exactly once, when the transport is gone. */
  onClose(handler: (err?: Error) => void): void;
}

export function webSocketTransport(ws: WebSocket): MessageTransport {
  let closed = false;
  let closeHandler: ((err?: Error) => void) | undefined;
  let lastError: Error | undefined;
  const sendOptions = { binary: true, compress: false };
  ws.on('error', (err) => {
    lastError = err;
  });
  ws.on('close', (code, reason) => {
    if (closed) return;
    closed = true;
    const abnormal = code !== 1000 && code !== 1001 && code !== 1005;
    const err = lastError ?? (abnormal ? new Error(`websocket closed with code ${code} ${reason.toString()}`.trim()) : undefined);
    closeHandler?.(err);
  });
  return {
    send(message, cb) {
      if (ws.readyState !== ws.OPEN) {
        cb(new Error('websocket is not open'));
        return;
      }
      ws.send(message, sendOptions, cb);
    },
    close(protocolError) {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(protocolError ? 1002 : 1000, protocolError ? 'protocol error' : 'bye');
    },
    terminate() {
      ws.terminate();
    },
    onMessage(handler) {
      ws.on('message', (data, isBinary) => {
        if (!isBinary || !Buffer.isBuffer(data)) {
          lastError = new Error('text or fragmented message on the tunnel');
          ws.terminate();
          return;
        }
        handler(data);
      });
    },
    onClose(handler) {
      closeHandler = handler;
    },
  };
}
