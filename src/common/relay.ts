/**
 * A byte relay with explicit backpressure: pause the source when write() returns false, resume on
 * 'drain' (docs/architecture.md, Code conventions). Hand-written instead of stream.pipeline because pipeline
 * allocates an AbortController per call and aborts it at the end (a DOMException plus an Event
 * dispatch): about 15% of the gateway's CPU per HTTP request in the profile of the keep-alive
 * benchmark.
 */
import { Socket } from 'node:net';
import type { Duplex, Writable } from 'node:stream';
import { WebgwError } from './errors.ts';

const prematureClose = (): Error => new WebgwError('WEBGW_ERR_PREMATURE_CLOSE', 'premature close');

/** Writes to a socket corked until the end of the tick: writes of one tick become one writev. */
export function writeCoalesced(socket: Writable, chunk: Buffer): boolean {
  if (socket.writableCorked === 0) {
    socket.cork();
    process.nextTick(uncork, socket);
  }
  return socket.write(chunk);
}

function uncork(socket: Writable): void {
  socket.uncork();
}

export interface RelayResult {
  error?: Error;
}

/**
 * Relays both ways with half-close: the end of one side's reading becomes the end of the other's
 * writing. One idempotent teardown destroys both sides once both directions are done or either
 * failed. Returns a function that tears down at once.
 */
export function relay(a: Duplex, b: Duplex, done?: (result: RelayResult) => void): () => void {
  const r = new Relay(a, b, done);
  return () => r.teardown();
}

/**
 * Both directions of a relay in one object: six listeners per side (data, end, drain, finish,
 * close, error), each serving both directions. With idle connections in the tens of thousands,
 * a relay's listeners and closures are a good part of the memory per stream.
 */
class Relay {
  private readonly a: Duplex;
  private readonly b: Duplex;
  private readonly done: ((result: RelayResult) => void) | undefined;
  private readonly aIsSocket: boolean;
  private readonly bIsSocket: boolean;
  /** a→b is done when b finished writing what a sent; b→a likewise. */
  private aToBDone = false;
  private bToADone = false;
  private tornDown = false;

  constructor(a: Duplex, b: Duplex, done: ((result: RelayResult) => void) | undefined) {
    this.a = a;
    this.b = b;
    this.done = done;
    this.aIsSocket = a instanceof Socket;
    this.bIsSocket = b instanceof Socket;
    // 'error' stays attached: an error after the relay is over must not become uncaught.
    a.on('error', this.onError);
    b.on('error', this.onError);
    a.on('close', this.onCloseA);
    b.on('close', this.onCloseB);
    a.on('end', this.onEndA);
    b.on('end', this.onEndB);
    a.on('finish', this.onFinishA);
    b.on('finish', this.onFinishB);
    a.on('drain', this.onDrainA);
    b.on('drain', this.onDrainB);
    a.on('data', this.onDataA);
    b.on('data', this.onDataB);
    // A 'data' listener does not restart a source that was paused explicitly (listeners that
    // held a connection until its stream was open do that).
    a.resume();
    b.resume();
    if (a.readableEnded) b.end();
    if (b.readableEnded) a.end();
  }

  teardown(err?: Error): void {
    if (this.tornDown) return;
    this.tornDown = true;
    this.a.destroy();
    this.b.destroy();
    this.done?.(err && !isBenignClose(err) ? { error: err } : {});
  }

  private readonly onError = (err: Error): void => this.teardown(err);

  private readonly onDataA = (chunk: Buffer): void => {
    if (!(this.bIsSocket ? writeCoalesced(this.b, chunk) : this.b.write(chunk))) this.a.pause();
  };

  private readonly onDataB = (chunk: Buffer): void => {
    if (!(this.aIsSocket ? writeCoalesced(this.a, chunk) : this.a.write(chunk))) this.b.pause();
  };

  private readonly onDrainA = (): void => {
    this.b.resume();
  };

  private readonly onDrainB = (): void => {
    this.a.resume();
  };

  private readonly onEndA = (): void => {
    this.b.end();
  };

  private readonly onEndB = (): void => {
    this.a.end();
  };

  private readonly onFinishA = (): void => {
    this.bToADone = true;
    if (this.aToBDone) this.teardown();
  };

  private readonly onFinishB = (): void => {
    this.aToBDone = true;
    if (this.bToADone) this.teardown();
  };

  /** A side closed: premature if a direction it takes part in was not done yet. */
  private readonly onCloseA = (): void => {
    if ((!this.aToBDone && !this.a.readableEnded) || (!this.bToADone && !this.a.writableFinished))
      this.teardown(prematureClose());
  };

  private readonly onCloseB = (): void => {
    if ((!this.bToADone && !this.b.readableEnded) || (!this.aToBDone && !this.b.writableFinished))
      this.teardown(prematureClose());
  };
}

/** Closing errors that are the normal end of a connection, not failures worth a log line. */
export function isBenignClose(err: Error): boolean {
  const code = (err as { code?: string }).code;
  return (
    code === 'WEBGW_ERR_PREMATURE_CLOSE' ||
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    code === 'ERR_STREAM_DESTROYED'
  );
}
