import type { MessageTransport } from '../../src/tunnel/transport.ts';

/** Two transports joined in memory; delivery is asynchronous like a socket's. */
export function memoryTransportPair(): [MessageTransport, MessageTransport] & { sent: Buffer[][] } {
  const handlers: Array<((m: Buffer) => void) | undefined> = [undefined, undefined];
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
    send(message, cb) {
      if (closed) {
        cb(new Error('closed'));
        return;
      }
      sent[self]!.push(message);
      const copy = Buffer.from(message);
      setImmediate(() => {
        if (!closed) handlers[1 - self]?.(copy);
        cb();
      });
    },
    close: () => setImmediate(() => closeBoth()),
    terminate: () => closeBoth(),
    onMessage: (h) => {
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
