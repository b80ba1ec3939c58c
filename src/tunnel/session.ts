/**
 * A multiplexed tunnel session over one message transport (a WebSocket in production).
 *
 * Sending: the outbox (outbox.ts) puts control frames ahead of DATA and takes DATA round-robin,
 * copied into messages of up to `maxMessageBytes`. Nothing more is framed while `maxBufferedBytes` sit unsent in the
 * transport, so memory never follows the speed of the slowest peer.
 *
 * Message buffers are reused once the transport is done with them: at full speed a fresh buffer
 * per message was most of the gateway's garbage (every large Buffer is external memory to V8,
 * and each 64 MiB of it started a full mark-compact).
 *
 * Receiving: frames are decoded as the transport's chunks arrive (no reassembly of messages);
 * every frame is checked against the protocol and the credit granted; a violation ends the
 * session (GOAWAY + close), never the process.
 */
import { EventEmitter } from 'node:events';
import { WebgwError, asError, describeError } from '../common/errors.ts';
import { systemClock, type Clock, type Timer } from '../common/clock.ts';
import { silentLogger, type Logger } from '../common/log.ts';
import {
  FLAG_ACK,
  FLAG_BLOCKED,
  FrameType,
  MAX_STREAM_ID,
  ResetCode,
  FrameDecoder,
  decodeCodeReason,
  decodeU32,
  encodeCodeReason,
  encodeFrame,
  encodeU32,
  type Frame,
} from './frame.ts';
import { decodeOpen, encodeOpen, type OpenRequest } from './open.ts';
import { Outbox } from './outbox.ts';
import { ReceiveBudget } from './receive-budget.ts';
import { TunnelStream, type StreamHost } from './stream.ts';
import type { MessageTransport } from './transport.ts';

export interface SessionOptions {
  /** The gateway is `server` and opens odd stream ids; the agent is `client` (even ids). */
  role: 'client' | 'server';
  initialWindow?: number;
  maxWindow?: number;
  /**
   * Cap on the sum of all streams' receive windows (the memory bound): a byte count for a budget
   * of this session's own, or a budget shared with other sessions (the gateway's per tenant).
   */
  receiveBudget?: number | ReceiveBudget;
  maxStreams?: number;
  maxMessageBytes?: number;
  maxBufferedBytes?: number;
  pingIntervalMs?: number;
  maxMissedPongs?: number;
  clock?: Clock;
  logger?: Logger;
}

export const sessionDefaults = {
  initialWindow: 256 * 1024,
  maxWindow: 4 * 1024 * 1024,
  minWindow: 16 * 1024,
  receiveBudget: 64 * 1024 * 1024,
  maxStreams: 10_000,
  maxMessageBytes: 256 * 1024,
  maxBufferedBytes: 2 * 1024 * 1024,
  maxControlBytes: 1024 * 1024,
  /** A message smaller than this is copied out so that its 256 KiB buffer is reused at once. */
  smallMessageBytes: 16 * 1024,
  pingIntervalMs: 10_000,
  maxMissedPongs: 3,
} as const;

export interface SessionEvents {
  stream: [stream: TunnelStream];
  goaway: [code: number, reason: string];
  rtt: [ms: number];
  close: [err?: Error];
}

export class TunnelSession extends EventEmitter<SessionEvents> implements StreamHost {
  private readonly transport: MessageTransport;
  private readonly opts: Required<Omit<SessionOptions, 'clock' | 'logger' | 'receiveBudget'>>;
  private readonly budget: ReceiveBudget;
  /** Window this session holds from its budget, returned when the session ends. */
  private budgetUsed = 0;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly streams = new Map<number, TunnelStream>();
  private readonly outbox = new Outbox(sessionDefaults.maxControlBytes);
  private readonly decoder = new FrameDecoder((frame) => this.onFrame(frame));
  /** Message buffers the transport gave back, ready for reuse (at most `maxSpare`). */
  private readonly spare: Buffer[] = [];
  private readonly maxSpare: number;
  private nextStreamId: number;
  private lastPeerStreamId = 0;
  private buffered = 0;
  private flushScheduled = false;
  private closed = false;
  private protocolFailed = false;
  private sentGoAway = false;
  private receivedGoAway = false;
  private drainTimer: Timer | undefined;
  private pingTimer: Timer | undefined;
  private pingSeq = 0;
  /** Pings sent and not answered yet: seq → when (the oldest go first past a few). */
  private readonly pingsInFlight = new Map<number, number>();
  /** Whether any frame came from the peer since the last ping tick: liveness, whatever it was. */
  private heardSinceTick = false;
  /** Ping ticks in a row with a ping out and nothing at all heard from the peer. */
  private silentTicks = 0;
  private lastRtt: number | undefined;
  private closeWaiters: Array<() => void> = [];
  private closeError: Error | undefined;
  bytesIn = 0;
  bytesOut = 0;

  constructor(transport: MessageTransport, options: SessionOptions) {
    super();
    this.transport = transport;
    this.clock = options.clock ?? systemClock;
    this.log = options.logger ?? silentLogger;
    this.opts = {
      role: options.role,
      initialWindow: options.initialWindow ?? sessionDefaults.initialWindow,
      maxWindow: options.maxWindow ?? sessionDefaults.maxWindow,
      maxStreams: options.maxStreams ?? sessionDefaults.maxStreams,
      maxMessageBytes: options.maxMessageBytes ?? sessionDefaults.maxMessageBytes,
      maxBufferedBytes: options.maxBufferedBytes ?? sessionDefaults.maxBufferedBytes,
      pingIntervalMs: options.pingIntervalMs ?? sessionDefaults.pingIntervalMs,
      maxMissedPongs: options.maxMissedPongs ?? sessionDefaults.maxMissedPongs,
    };
    const budget = options.receiveBudget ?? sessionDefaults.receiveBudget;
    this.budget = typeof budget === 'number' ? new ReceiveBudget(budget) : budget;
    this.nextStreamId = options.role === 'server' ? 1 : 2;
    this.maxSpare = Math.ceil(this.opts.maxBufferedBytes / this.opts.maxMessageBytes) + 1;
    transport.onData((chunk, endOfMessage) => this.onData(chunk, endOfMessage));
    transport.onClose((err) => this.finish(err ?? this.closeError));
    this.schedulePing();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** True once either side said GOAWAY: no new streams may be opened on this session. */
  get isDraining(): boolean {
    return this.sentGoAway || this.receivedGoAway;
  }

  get activeStreams(): number {
    return this.streams.size;
  }

  get rttMs(): number | undefined {
    return this.lastRtt;
  }

  /** Opens a stream towards the peer; await `stream.accepted()` before relying on it. */
  open(request: OpenRequest): TunnelStream {
    if (this.closed || this.isDraining) {
      throw new WebgwError('WEBGW_ERR_SESSION_CLOSED', this.closed ? 'session is closed' : 'session is draining');
    }
    if (this.streams.size >= this.opts.maxStreams) {
      throw new WebgwError('WEBGW_ERR_STREAM_LIMIT', `session already has ${this.streams.size} streams`);
    }
    if (this.nextStreamId > MAX_STREAM_ID) {
      this.goAway(ResetCode.SHUTDOWN, 'stream ids exhausted');
      throw new WebgwError('WEBGW_ERR_SESSION_CLOSED', 'stream ids exhausted');
    }
    const window = this.reserveInitialWindow();
    if (window === 0)
      throw new WebgwError('WEBGW_ERR_STREAM_LIMIT', 'receive budget spent: no window left for another stream');
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const stream = new TunnelStream(this, id, request, true, this.opts, window);
    this.streams.set(id, stream);
    this.queueControl(encodeFrame(FrameType.OPEN, 0, id, encodeOpen({ ...request, initialWindow: window })));
    return stream;
  }

  /** Sends a PING now; the RTT arrives as an `rtt` event. */
  ping(): void {
    if (this.closed) return;
    this.pingSeq = (this.pingSeq + 1) >>> 0;
    this.pingsInFlight.set(this.pingSeq, this.clock.now());
    if (this.pingsInFlight.size > this.opts.maxMissedPongs + 1)
      this.pingsInFlight.delete(this.pingsInFlight.keys().next().value as number);
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(this.pingSeq, 0);
    this.queueControl(encodeFrame(FrameType.PING, 0, 0, payload));
  }

  /** Tells the peer to open no new streams; existing streams continue. Idempotent. */
  goAway(code: number = ResetCode.SHUTDOWN, reason = 'shutting down'): void {
    if (this.sentGoAway || this.closed) return;
    this.sentGoAway = true;
    this.queueControl(encodeFrame(FrameType.GOAWAY, 0, 0, encodeCodeReason(code, reason)));
  }

  /**
   * Drains: GOAWAY, wait for the open streams to finish (at most `timeoutMs`), then close the
   * transport. Idempotent; resolves when the session is closed.
   */
  close(timeoutMs = 30_000): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.goAway();
    if (!this.drainTimer) {
      this.drainTimer = this.clock.setTimeout(
        () => this.destroy(new WebgwError('WEBGW_ERR_TIMEOUT', 'drain timed out')),
        timeoutMs,
      );
    }
    this.maybeFinishDrain();
    return this.closedPromise();
  }

  /** Closes now: every stream fails with `err`. Idempotent. */
  destroy(err?: Error): void {
    if (this.closed) return;
    this.closeError = err;
    this.transport.terminate();
    this.finish(err);
  }

  closedPromise(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  // ---- StreamHost -------------------------------------------------------------------------

  markReady(stream: TunnelStream): void {
    if (this.closed) return;
    this.outbox.markReady(stream);
    this.scheduleFlush();
  }

  sendWindow(streamId: number, increment: number, ack: boolean): void {
    this.queueControl(encodeFrame(FrameType.WINDOW, ack ? FLAG_ACK : 0, streamId, encodeU32(increment)));
  }

  sendReset(streamId: number, code: ResetCode, reason: string): void {
    this.queueControl(encodeFrame(FrameType.RESET, 0, streamId, encodeCodeReason(code, reason)));
  }

  reserveWindow(bytes: number): number {
    const granted = this.budget.reserve(bytes);
    this.budgetUsed += granted;
    return granted;
  }

  releaseWindow(bytes: number): void {
    this.budget.release(bytes);
    this.budgetUsed -= bytes;
  }

  streamClosed(stream: TunnelStream): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    this.outbox.forget(stream);
    this.maybeFinishDrain();
  }

  // ---- receiving --------------------------------------------------------------------------

  private onData(chunk: Buffer, endOfMessage: boolean): void {
    if (this.closed || this.protocolFailed) return;
    this.bytesIn += chunk.length;
    try {
      this.decoder.push(chunk, endOfMessage);
    } catch (err) {
      this.failProtocol(err);
    }
  }

  private onFrame(frame: Frame): void {
    this.heardSinceTick = true;
    switch (frame.type) {
      case FrameType.OPEN:
        this.onOpen(frame);
        return;
      case FrameType.DATA: {
        const stream = this.streams.get(frame.streamId);
        if (stream)
          this.guardStream(stream, () => stream.handleData(frame.payload, (frame.flags & FLAG_BLOCKED) !== 0));
        return;
      }
      case FrameType.WINDOW: {
        const increment = decodeU32(frame.payload, 'WINDOW');
        const stream = this.streams.get(frame.streamId);
        if (!stream) return;
        if (frame.flags & FLAG_ACK) stream.handleAccept(increment);
        else stream.handleWindow(increment);
        return;
      }
      case FrameType.FIN: {
        const stream = this.streams.get(frame.streamId);
        if (stream) stream.handleFin();
        return;
      }
      case FrameType.RESET: {
        const { code, reason } = decodeCodeReason(frame.payload);
        this.streams.get(frame.streamId)?.handleReset(code, reason);
        return;
      }
      case FrameType.PING:
        this.queueControl(encodeFrame(FrameType.PONG, 0, 0, frame.payload));
        return;
      case FrameType.PONG:
        this.onPong(frame.payload);
        return;
      case FrameType.GOAWAY: {
        const { code, reason } = decodeCodeReason(frame.payload);
        if (!this.receivedGoAway) {
          this.receivedGoAway = true;
          this.emit('goaway', code, reason);
          this.maybeFinishDrain();
        }
        return;
      }
    }
  }

  private onOpen(frame: Frame): void {
    const id = frame.streamId;
    const peerParity = this.opts.role === 'server' ? 0 : 1;
    if (id % 2 !== peerParity || id <= this.lastPeerStreamId) {
      throw new WebgwError('WEBGW_ERR_PROTOCOL', `OPEN with invalid stream id ${id}`);
    }
    this.lastPeerStreamId = id;
    const open = decodeOpen(frame.payload);
    if (this.sentGoAway) {
      this.sendReset(id, ResetCode.REFUSED, 'session is draining');
      return;
    }
    if (this.streams.size >= this.opts.maxStreams) {
      this.sendReset(id, ResetCode.STREAM_LIMIT, `limit of ${this.opts.maxStreams} streams reached`);
      return;
    }
    const window = this.reserveInitialWindow();
    if (window === 0) {
      this.sendReset(id, ResetCode.STREAM_LIMIT, 'receive budget spent');
      return;
    }
    const { initialWindow, ...request } = open;
    if (initialWindow > 0x7fffffff)
      throw new WebgwError('WEBGW_ERR_FLOW_CONTROL', `initial window too large on stream ${id}`);
    const stream = new TunnelStream(this, id, request, false, this.opts, window, initialWindow);
    this.streams.set(id, stream);
    if (this.listenerCount('stream') === 0) {
      stream.refuse(ResetCode.NO_ROUTE, 'peer accepts no streams');
      return;
    }
    this.emit('stream', stream);
  }

  private guardStream(stream: TunnelStream, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (err instanceof WebgwError && err.code === 'WEBGW_ERR_FLOW_CONTROL') {
        // A peer that ignores credit is broken or hostile: the whole session goes.
        throw err;
      }
      this.log.warn('stream error', { stream: stream.id, err: describeError(err) });
      stream.destroy(err as Error);
    }
  }

  private onPong(payload: Buffer): void {
    if (payload.length !== 8) throw new WebgwError('WEBGW_ERR_PROTOCOL', 'PONG payload must be 8 bytes');
    // A pong answers the ping of its seq, which need not be the latest: on a link whose round
    // trip (queueing included) is longer than the ping interval every pong is for an older one.
    const seq = payload.readUInt32BE(0);
    const sentAt = this.pingsInFlight.get(seq);
    if (sentAt === undefined) return; // not ours, or older than we remember
    for (const s of this.pingsInFlight.keys()) {
      this.pingsInFlight.delete(s);
      if (s === seq) break;
    }
    this.lastRtt = this.clock.now() - sentAt;
    this.emit('rtt', this.lastRtt);
  }

  private schedulePing(): void {
    if (this.opts.pingIntervalMs <= 0) return;
    this.pingTimer = this.clock.setTimeout(() => {
      if (this.closed) return;
      // Any frame proves the peer alive: a pong may wait behind megabytes of data on a slow link.
      if (this.heardSinceTick) this.silentTicks = 0;
      else if (this.pingsInFlight.size > 0) this.silentTicks += 1;
      this.heardSinceTick = false;
      if (this.silentTicks >= this.opts.maxMissedPongs) {
        this.log.warn('tunnel peer silent', { pings: this.silentTicks });
        this.destroy(
          new WebgwError('WEBGW_ERR_PEER_DEAD', `nothing heard from the peer for ${this.silentTicks} ping intervals`),
        );
        return;
      }
      this.ping();
      this.schedulePing();
    }, this.opts.pingIntervalMs);
  }

  private failProtocol(err: unknown): void {
    const error = asError(err);
    this.protocolFailed = true;
    this.log.warn('tunnel protocol error; closing session', { err: describeError(error) });
    if (!this.sentGoAway) {
      this.sentGoAway = true;
      const code =
        error instanceof WebgwError && error.code === 'WEBGW_ERR_FLOW_CONTROL'
          ? ResetCode.FLOW_CONTROL
          : ResetCode.PROTOCOL;
      const goaway = encodeFrame(FrameType.GOAWAY, 0, 0, encodeCodeReason(code, error.message));
      const headroom = this.transport.headroom;
      const message = Buffer.allocUnsafe(headroom + goaway.length);
      goaway.copy(message, headroom);
      this.transport.send(message, message.length, () => {});
    }
    this.closeError = error;
    this.transport.close(true);
    // Streams fail now; the transport's close event finishes the session.
    for (const stream of [...this.streams.values()]) stream.abort(error);
    this.clock.setTimeout(() => this.destroy(error), 1000);
  }

  // ---- sending ----------------------------------------------------------------------------

  /** The window for a new stream; 0 when the budget cannot even give it the minimum. */
  private reserveInitialWindow(): number {
    const want = this.opts.initialWindow;
    const granted = this.reserveWindow(want);
    if (granted === want) return want;
    // Over the soft share: a small window still lets the stream make progress, up to the limit.
    this.releaseWindow(granted);
    if (!this.budget.reserveMinimum(sessionDefaults.minWindow)) return 0;
    this.budgetUsed += sessionDefaults.minWindow;
    return sessionDefaults.minWindow;
  }

  private queueControl(frame: Buffer): void {
    if (this.closed) return;
    if (!this.outbox.queueControl(frame)) {
      // The peer makes us answer faster than it reads (e.g. a PING flood).
      this.destroy(new WebgwError('WEBGW_ERR_PROTOCOL', 'control queue overflow: peer is not reading'));
      return;
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const headroom = this.transport.headroom;
    while (!this.closed && this.buffered < this.opts.maxBufferedBytes) {
      const slab = this.spare.pop() ?? Buffer.allocUnsafeSlow(headroom + this.opts.maxMessageBytes);
      const end = this.outbox.fill(slab, headroom);
      if (end === headroom) {
        this.spare.push(slab);
        return;
      }
      this.bytesOut += end - headroom;
      if (end < sessionDefaults.smallMessageBytes) {
        // A few control frames: a right-sized copy, so small messages never pin whole slabs.
        const small = Buffer.allocUnsafe(end);
        slab.copy(small, 0, 0, end);
        this.spare.push(slab);
        this.buffered += end;
        this.transport.send(small, end, this.onSent(end, undefined));
      } else {
        // Counted at its full size: at most maxBufferedBytes of slabs are ever in flight.
        this.buffered += slab.length;
        this.transport.send(slab, end, this.onSent(slab.length, slab));
      }
    }
  };

  private onSent(cost: number, slab: Buffer | undefined): (err?: Error) => void {
    return (err) => {
      this.buffered -= cost;
      if (err) {
        this.destroy(err);
        return;
      }
      const busy = this.outbox.hasWork;
      if (slab && this.spare.length < this.maxSpare) this.spare.push(slab);
      // Idle again: keep one buffer, give the rest back to the allocator.
      if (!busy && this.buffered === 0 && this.spare.length > 1) this.spare.length = 1;
      if (busy) this.scheduleFlush();
    };
  }

  private maybeFinishDrain(): void {
    if (this.closed || this.streams.size > 0) return;
    // Close once we asked to drain and nothing is left; the peer will see the transport close.
    if (this.drainTimer) {
      this.flush();
      this.drainTimer.cancel();
      this.transport.close();
    }
  }

  private finish(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.pingTimer?.cancel();
    this.drainTimer?.cancel();
    const streamError = new WebgwError(
      'WEBGW_ERR_SESSION_CLOSED',
      err ? `tunnel session closed: ${err.message}` : 'tunnel session closed',
      { cause: err },
    );
    for (const stream of [...this.streams.values()]) stream.abort(streamError);
    this.streams.clear();
    // A shared budget (the gateway's per tenant) must get back all this session held.
    if (this.budgetUsed > 0) this.releaseWindow(this.budgetUsed);
    this.outbox.clear();
    this.spare.length = 0;
    this.emit('close', err);
    for (const w of this.closeWaiters.splice(0)) w();
  }
}
