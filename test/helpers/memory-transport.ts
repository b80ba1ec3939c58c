import type { MessageTransport } from '../../src/tunnel/transport.ts';

/** Sends `message` whole through a transport (tests that inject bytes). */
export function sendWhole(transport: MessageTransport, message: Buffer): void {
  const buffer = Buffer.alloc(transport.headroom + message.length);
  message.copy(buffer, transport.headroom);
  transport.send(buffer, buffer.length, () => {});
}

/**
 * Two transports joined in memory; delivery is asynchronous like a socket's. Each message is
 * copied and delivered in chunks of at most `chunkBytes` (as TLS records would split it), so
 * the session's incremental decoding is exercised.
 */
export function memoryTransportPair(
  chunkBytes = 16 * 1024,
): [MessageTransport, MessageTransport] & { sent: Buffer[][] } {
  const handlers: Array<((chunk: Buffer, endOfMessage: boolean) => void) | undefined> = [undefined, undefined];
  const closeHandlers: Array<((err?: Error) => void) | undefined> = [undefined, undefined];
  let closed = false;
  const sent: Buffer[][] = [[], []];
  const closeBoth = (err?: Error): void => {
    if (closed) return;
    closed = true;
    setImmediate(() => {
      closeHandlers[0]?.(err);
      closeHandlers[1]?.(err);
    });
  };
  const make = (self: 0 | 1): MessageTransport => ({
    headroom: 4,
    send(buffer, end, cb) {
      if (closed) {
        cb(new Error('closed'));
        return;
      }
      // The sender reuses `buffer` after cb: keep a copy, as a socket would.
      const copy = Buffer.from(buffer.subarray(4, end));
      sent[self]!.push(copy);
      setImmediate(() => {
        for (let at = 0; !closed && at < copy.length; at += chunkBytes) {
          const last = at + chunkBytes >= copy.length;
          handlers[1 - self]?.(copy.subarray(at, at + chunkBytes), last);
        }
        cb();
      });
    },
    close: () => setImmediate(() => closeBoth()),
    terminate: () => closeBoth(),
    onData: (h) => {
      handlers[self] = h;
    },
    onClose: (h) => {
      closeHandlers[self] = h;
    },
  });
  const pair = [make(0), make(1)] as [MessageTransport, MessageTransport] & { sent: Buffer[][] };
  pair.sent = sent;
  return pair;
}
