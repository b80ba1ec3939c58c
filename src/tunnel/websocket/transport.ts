/**
 * The tunnel's MessageTransport over a WebSocket connection whose handshake is done (see
 * handshake.ts): a socket (TLS in production) and the bytes that followed the handshake.
 *
 * Sending writes each message as one frame, its header placed in the headroom the session left
 * in front of the message, so a message is one socket write and no copy. Receiving hands the
 * payload on chunk by chunk. Pings are answered, close frames follow RFC 6455 §7 (echo, then end
 * the TCP connection; a peer that does not finish the close in time is cut off).
 */
import type { Socket } from 'node:net';
import { WebgwError } from '../../common/errors.ts';
import type { MessageTransport } from '../transport.ts';
import {
  CloseCode,
  MAX_HEADER_BYTES,
  Opcode,
  WebSocketParser,
  WebSocketProtocolError,
  closePayload,
  controlFrame,
  writeFrameHeader,
} from './frames.ts';

export interface WebSocketTransportOptions {
  /** Our side of the connection: the client masks its frames (with the zero key). */
  role: 'client' | 'server';
  /** Largest message accepted; a bigger one closes the connection with 1009. */
  maxMessageBytes: number;
  /** How long a close handshake may take before the socket is destroyed. */
  closeTimeoutMs?: number;
}

type State = 'open' | 'closing' | 'closed';

/**
 * Unsent bytes beyond which a ping is not answered but ends the connection. The session keeps
 * at most 2 MiB of messages in flight, so only a peer that stopped reading gets here.
 */
const MAX_UNREAD_BYTES = 4 * 1024 * 1024;

const NORMAL_CLOSES: ReadonlySet<number> = new Set([CloseCode.NORMAL, CloseCode.GOING_AWAY, CloseCode.NO_STATUS]);

export function webSocketTransport(socket: Socket, head: Buffer, options: WebSocketTransportOptions): MessageTransport {
  const masked = options.role === 'client';
  const closeTimeoutMs = options.closeTimeoutMs ?? 5000;
  let state: State = 'open';
  let closeHandler: ((err?: Error) => void) | undefined;
  let dataHandler: ((chunk: Buffer, endOfMessage: boolean) => void) | undefined;
  let lastError: Error | undefined;
  let received: { code: number; reason: string } | undefined;
  let closeTimer: NodeJS.Timeout | undefined;
  let sentNormalClose = false;

  socket.setNoDelay(true);

  const sendClose = (code: number, reason: string): void => {
    if (state !== 'open') return;
    state = 'closing';
    sentNormalClose = NORMAL_CLOSES.has(code);
    socket.write(controlFrame(Opcode.CLOSE, closePayload(code, reason), masked));
    closeTimer = setTimeout(() => socket.destroy(), closeTimeoutMs);
    closeTimer.unref();
  };

  const parser = new WebSocketParser(options.role, options.maxMessageBytes, {
    data: (chunk, endOfMessage) => {
      if (state === 'open') dataHandler?.(chunk, endOfMessage);
    },
    control: (opcode, payload) => {
      if (opcode === Opcode.PING) {
        if (state !== 'open') return;
        // Pongs pile up in our write buffer when the peer pings without reading: a bound.
        if (socket.writableLength > MAX_UNREAD_BYTES) {
          lastError = new WebgwError(
            'WEBGW_ERR_PEER_STALLED',
            `peer does not read (more than ${MAX_UNREAD_BYTES} bytes unsent) but keeps pinging`,
          );
          socket.destroy();
          return;
        }
        socket.write(controlFrame(Opcode.PONG, payload, masked));
      } else if (opcode === Opcode.CLOSE) {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : CloseCode.NO_STATUS;
        received = { code, reason: payload.subarray(2).toString('utf8') };
        // Echo the close (RFC 6455 §5.5.1), then end the TCP connection.
        if (state === 'open') sendClose(code === CloseCode.NO_STATUS ? CloseCode.NORMAL : code, '');
        socket.end();
      }
      // A pong answers a ping we never send: the session has its own PING with RTT.
    },
  });

  let broken = false;
  const onSocketData = (chunk: Buffer): void => {
    if (broken) return; // the peer broke the protocol: its bytes are read (to see its end) and dropped
    try {
      parser.push(chunk);
    } catch (err) {
      if (!(err instanceof WebSocketProtocolError)) throw err;
      broken = true;
      lastError = err;
      sendClose(err.closeCode, err.message);
      socket.end();
    }
  };

  // Server sockets allow half-open connections: the peer's end is our end too.
  socket.on('end', () => socket.end());
  socket.on('error', (err) => {
    lastError ??= err;
  });
  socket.on('close', () => {
    if (state === 'closed') return;
    state = 'closed';
    if (closeTimer) clearTimeout(closeTimer);
    let err = lastError;
    if (!err && received && !NORMAL_CLOSES.has(received.code))
      err = new WebgwError(
        'WEBGW_ERR_WEBSOCKET_CLOSED',
        `websocket closed with code ${received.code} ${received.reason}`.trim(),
        { closeCode: received.code },
      );
    if (!err && !received && !sentNormalClose)
      err = new WebgwError(
        'WEBGW_ERR_WEBSOCKET_CLOSED',
        `websocket closed without a close frame (code ${CloseCode.ABNORMAL})`,
        { closeCode: CloseCode.ABNORMAL },
      );
    closeHandler?.(err);
  });

  return {
    headroom: MAX_HEADER_BYTES,
    send(buffer, end, cb) {
      if (state !== 'open' || socket.destroyed) {
        cb(new WebgwError('WEBGW_ERR_SESSION_CLOSED', 'websocket is not open'));
        return;
      }
      const start = writeFrameHeader(buffer, MAX_HEADER_BYTES, Opcode.BINARY, end - MAX_HEADER_BYTES, masked);
      socket.write(buffer.subarray(start, end), (err) => cb(err ?? undefined));
    },
    close(protocolError) {
      if (protocolError) sendClose(CloseCode.PROTOCOL_ERROR, 'protocol error');
      else sendClose(CloseCode.NORMAL, 'bye');
    },
    terminate() {
      socket.destroy();
    },
    onData(handler) {
      dataHandler = handler;
      if (head.length > 0) onSocketData(head);
      socket.on('data', onSocketData);
    },
    onClose(handler) {
      closeHandler = handler;
    },
  };
}
