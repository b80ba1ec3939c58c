/**
 * One multiplexed stream: a Node Duplex whose writes become DATA frames and whose readable side
 * is fed by the session. Flow control (docs/architecture.md, Tunnel):
 *
 * - The sender may have at most `sendCredit` unacknowledged bytes in flight.
 * - The receiver returns credit only for bytes that left its readable buffer, i.e. that the
 *   local consumer accepted; a consumer that stops reading stops the sender after one window.
 * - The window starts at `initialWindow` and doubles (up to `maxWindow`) while the consumer
 *   keeps up and the sender is window-limited, as long as the session's budget allows.
 */
import { Duplex } from 'node:stream';
import { WebgwError } from '../common/errors.ts';
import { MAX_DATA_PAYLOAD, ResetCode } from './frame.ts';
import { Inbox, detached } from './inbox.ts';
import type { OpenRequest } from './open.ts';

/** What a stream needs from its session; implemented by TunnelSession. */
export interface StreamHost {
  /** The stream has data (or FIN) to send and credit to send it. */
  markReady(stream: TunnelStream): void;
  sendWindow(streamId: number, increment: number, ack: boolean): void;
  sendReset(streamId: number, code: ResetCode, reason: string): void;
  /** Reserves more receive window from the session budget; returns what was granted. */
  reserveWindow(bytes: number): number;
  releaseWindow(bytes: number): void;
  streamClosed(stream: TunnelStream): void;
}

export interface StreamWindows {
  initialWindow: number;
  maxWindow: number;
}

type State = 'opening' | 'pending' | 'open';

const ignoreError = (): void => {};

interface PendingWrite {
  chunk: Buffer;
  offset: number;
  cb: (err?: Error | null) => void;
}

export class TunnelStream extends Duplex {
  readonly id: number;
  readonly request: OpenRequest;
  /** True on the side that sent OPEN. */
  readonly outbound: boolean;

  private readonly host: StreamHost;
  private readonly maxWindow: number;
  private state: State;
  private sendCredit = 0;
  private pending: PendingWrite | undefined;
  private finQueued = false;
  private finSent = false;
  private finReceived = false;
  private resetReceived = false;
  private finalCallback: ((err?: Error | null) => void) | undefined;
  private acceptWaiters: Array<(err?: Error) => void> = [];
  private acceptError: Error | undefined;
  /** Receive side accounting, all in bytes. */
  private window: number;
  private granted: number;
  private received = 0;
  private growRequested = false;
  private readonly inbox = new Inbox();
  /** The reader asked (`_read`) and got nothing yet: the next payload goes to it directly. */
  private readPending = false;
  private bytesSent = 0;
  /** Set by `takeData` when the frame it returned used the last credit with data left over. */
  lastTakeBlocked = false;

  /**
   * `sendCredit` is the peer's initial window: known from OPEN on the accepting side, from the
   * ACK on the opening side (zero until then).
   */
  constructor(
    host: StreamHost,
    id: number,
    request: OpenRequest,
    outbound: boolean,
    windows: StreamWindows,
    receiveWindow: number,
    sendCredit = 0,
  ) {
    // No read-ahead into the Readable's own buffer (one entry per push, whatever its size): data
    // the reader has not asked for waits in the inbox, whose memory follows the bytes.
    super({ allowHalfOpen: true, readableHighWaterMark: 0, writableHighWaterMark: 64 * 1024 });
    this.host = host;
    this.id = id;
    this.request = request;
    this.outbound = outbound;
    this.maxWindow = windows.maxWindow;
    this.window = receiveWindow;
    this.granted = receiveWindow;
    this.sendCredit = sendCredit;
    this.state = outbound ? 'opening' : 'pending';
    // A stream's failure is reported through accepted(), pipeline callbacks and 'close'; an
    // 'error' nobody listens to must never take the whole gateway or agent down.
    this.on('error', ignoreError);
  }

  /** Bytes written by the local side and framed so far; zero means a retry elsewhere is safe. */
  get sentBytes(): number {
    return this.bytesSent;
  }

  get receivedBytes(): number {
    return this.received;
  }

  get receiveWindow(): number {
    return this.window;
  }

  get isAccepted(): boolean {
    return this.state === 'open';
  }

  /** Resolves once the peer accepted the OPEN; rejects with WEBGW_ERR_STREAM_REFUSED otherwise. */
  accepted(): Promise<void> {
    if (this.state === 'open') return Promise.resolve();
    if (this.acceptError) return Promise.reject(this.acceptError);
    return new Promise((resolve, reject) => {
      this.acceptWaiters.push((err) => (err ? reject(err) : resolve()));
    });
  }

  /** Acceptor side: the backend is ready, tell the opener it may send. */
  accept(): void {
    if (this.state !== 'pending' || this.destroyed) return;
    this.state = 'open';
    this.host.sendWindow(this.id, this.window, true);
    if (this.pending || this.finQueued) this.host.markReady(this);
  }

  /** Acceptor side: refuse before any byte was exchanged, so the opener may try elsewhere. */
  refuse(code: ResetCode, reason: string): void {
    if (this.state !== 'pending' || this.destroyed) return;
    this.host.sendReset(this.id, code, reason);
    this.resetReceived = true; // nothing more to tell the peer
    this.destroy(); // no 'error': refusing is the acceptor's own decision
  }

  // ---- called by the session ------------------------------------------------------------

  handleAccept(initialCredit: number): void {
    if (this.state !== 'opening') throw new WebgwError('WEBGW_ERR_PROTOCOL', `unexpected accept on stream ${this.id}`);
    if (initialCredit > 0x7fffffff)
      throw new WebgwError('WEBGW_ERR_FLOW_CONTROL', `initial window too large on stream ${this.id}`);
    this.state = 'open';
    this.sendCredit = initialCredit;
    for (const w of this.acceptWaiters.splice(0)) w();
    if (this.pending || this.finQueued) this.host.markReady(this);
  }

  handleWindow(increment: number): void {
    if (this.state === 'opening')
      throw new WebgwError('WEBGW_ERR_PROTOCOL', `WINDOW before accept on stream ${this.id}`);
    this.sendCredit += increment;
    if (this.sendCredit > 0x7fffffff)
      throw new WebgwError('WEBGW_ERR_FLOW_CONTROL', `credit overflow on stream ${this.id}`);
    if (this.pending) this.host.markReady(this);
  }

  handleData(payload: Buffer, blocked: boolean): void {
    if (this.finReceived) throw new WebgwError('WEBGW_ERR_PROTOCOL', `DATA after FIN on stream ${this.id}`);
    if (this.state !== 'open') throw new WebgwError('WEBGW_ERR_PROTOCOL', `DATA before accept on stream ${this.id}`);
    this.received += payload.length;
    if (this.received > this.granted) {
      throw new WebgwError(
        'WEBGW_ERR_FLOW_CONTROL',
        `stream ${this.id} exceeded its window by ${this.received - this.granted} bytes`,
      );
    }
    if (this.destroyed) return;
    if (blocked) this.growRequested = true;
    if (this.readPending && this.inbox.length === 0) {
      this.readPending = false;
      this.push(detached(payload));
    } else {
      this.inbox.add(payload);
    }
    this.returnCredit();
  }

  handleFin(): void {
    if (this.finReceived) throw new WebgwError('WEBGW_ERR_PROTOCOL', `duplicate FIN on stream ${this.id}`);
    this.finReceived = true;
    // With data still waiting, the end is pushed by _read after it.
    if (!this.destroyed && this.inbox.length === 0) this.push(null);
  }

  handleReset(code: number, reason: string): void {
    this.resetReceived = true;
    const beforeAccept = this.state === 'opening';
    const err = beforeAccept
      ? new WebgwError('WEBGW_ERR_STREAM_REFUSED', `refused by peer (code ${code}): ${reason}`, { resetCode: code })
      : new WebgwError('WEBGW_ERR_STREAM_RESET', `reset by peer (code ${code}): ${reason}`, { resetCode: code });
    this.destroy(err);
  }

  /**
   * The scheduler asks for the next frame's worth of data: returns the payload to send (at most
   * `max`, `MAX_DATA_PAYLOAD` and the credit) as a view the caller copies before anything else
   * runs, `'fin'` when only FIN remains, or undefined when blocked.
   */
  takeData(max: number): Buffer | 'fin' | undefined {
    if (this.state !== 'open') return undefined;
    const p = this.pending;
    if (p) {
      const n = Math.min(p.chunk.length - p.offset, this.sendCredit, MAX_DATA_PAYLOAD, max);
      if (n <= 0) return undefined;
      const slice = p.chunk.subarray(p.offset, p.offset + n);
      p.offset += n;
      this.sendCredit -= n;
      this.bytesSent += n;
      // writableLength still counts the whole current chunk: more than `offset` means data is left.
      this.lastTakeBlocked = this.sendCredit === 0 && this.writableLength > p.offset;
      if (p.offset === p.chunk.length) {
        this.pending = undefined;
        p.cb();
      }
      return slice;
    }
    if (this.finQueued && !this.finSent) {
      this.finSent = true;
      const cb = this.finalCallback;
      this.finalCallback = undefined;
      cb?.();
      return 'fin';
    }
    return undefined;
  }

  /** True when `takeData` would return something now. */
  get hasSendable(): boolean {
    if (this.state !== 'open') return false;
    if (this.pending) return this.sendCredit > 0;
    return this.finQueued && !this.finSent;
  }

  /** The session is gone: fail everything without sending anything. */
  abort(err: Error): void {
    this.resetReceived = true;
    this.destroy(err);
  }

  // ---- net.Socket surface that node:http uses on pooled connections ------------------------
  // The tunnel has its own liveness (PING) and no Nagle, so these are deliberate no-ops.

  setKeepAlive(): this {
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  setTimeout(): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  // ---- Duplex implementation -------------------------------------------------------------

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (chunk.length === 0) {
      cb();
      return;
    }
    this.pending = { chunk, offset: 0, cb };
    if (this.sendCredit > 0) this.host.markReady(this);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.finQueued = true;
    this.finalCallback = cb;
    this.host.markReady(this);
  }

  override _read(): void {
    // Credit is returned in read() below, because Readable calls _read only once until the next
    // push (returning it here would deadlock).
    if (this.inbox.length === 0) {
      this.readPending = true;
      return;
    }
    this.readPending = false;
    for (const chunk of this.inbox.takeAll()) this.push(chunk);
    if (this.finReceived) this.push(null);
  }

  // Every consumer path (flowing mode, async iteration, read()) takes buffered data via read().
  override read(size?: number): Buffer | null {
    const chunk = super.read(size) as Buffer | null;
    if (chunk !== null) this.returnCredit();
    return chunk;
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const clean = this.finSent && this.finReceived;
    if (!this.resetReceived && !clean) {
      this.host.sendReset(this.id, err ? ResetCode.INTERNAL : ResetCode.CANCEL, err ? err.message : 'cancelled');
    }
    const failure = err ?? new WebgwError('WEBGW_ERR_STREAM_RESET', 'stream destroyed');
    if (this.state === 'opening') {
      this.acceptError =
        failure instanceof WebgwError && failure.code === 'WEBGW_ERR_STREAM_REFUSED'
          ? failure
          : new WebgwError('WEBGW_ERR_STREAM_REFUSED', failure.message, { cause: failure });
      for (const w of this.acceptWaiters.splice(0)) w(this.acceptError);
    }
    const p = this.pending;
    this.pending = undefined;
    p?.cb(failure);
    const f = this.finalCallback;
    this.finalCallback = undefined;
    f?.(failure);
    this.host.releaseWindow(this.window);
    this.host.streamClosed(this);
    cb(err);
  }

  /**
   * Returns credit for consumed bytes once a quarter window is owed, and grows the window when
   * the consumer keeps up while the sender is window-limited (a simple BDP estimate).
   */
  private returnCredit(): void {
    if (this.state !== 'open' || this.finReceived || this.destroyed) return;
    const buffered = this.readableLength + this.inbox.length;
    const consumed = this.received - buffered;
    if (this.growRequested && buffered === 0 && this.window < this.maxWindow) {
      this.growRequested = false;
      const extra = this.host.reserveWindow(Math.min(this.window, this.maxWindow - this.window));
      this.window += extra;
    }
    const owed = consumed + this.window - this.granted;
    if (owed >= this.window / 4) {
      this.granted += owed;
      this.host.sendWindow(this.id, owed, false);
    }
  }
}
