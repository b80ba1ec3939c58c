/**
 * One request/response exchange over a keep-alive tunnel stream: write the request head and
 * body (HTTP/1.1 framing) to the stream, parse the response (response-parser.ts) and write it to
 * the client socket, with backpressure both ways. Settles with whether the stream can carry the
 * next request and whether the client connection can carry the next one.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { WebgwError } from '../../common/errors.ts';
import type { Clock } from '../../common/clock.ts';
import { writeCoalesced } from '../../common/relay.ts';
import type { TunnelStream } from '../../tunnel/stream.ts';
import type { BodySink } from './client-connection.ts';
import { LAST_CHUNK, parserInput, writeChunk } from './chunked.ts';
import { forwardResponseHeaders, headerLines, serializeRequestHead } from './headers.ts';
import type { RequestHead } from '../../common/http/request-parser.ts';
import { ResponseParser, type ResponseHead } from './response-parser.ts';

export type ExchangeOutcome =
  /** The response was delivered; `reusable`: the stream may serve another request; `keepClient`: so may the client connection. */
  | { kind: 'done'; reusable: boolean; keepClient: boolean; status: number }
  /** The backend answered an upgrade request with 101: the stream (paused) now carries the new protocol. */
  | { kind: 'switched'; head: ResponseHead; rest: Buffer }
  /** Failed before any response byte reached the client: the caller may answer 5xx or retry. */
  | { kind: 'failed'; error: Error; responseStarted: false }
  /** Failed mid-response: the client connection must be cut. */
  | { kind: 'failed'; error: Error; responseStarted: true };

export interface ExchangeOptions {
  client: Socket;
  request: RequestHead;
  stream: TunnelStream;
  /** Request headers already rewritten for the backend (X-Forwarded-*, no hop-by-hop). */
  headers: string[];
  /** The client's connection may stay open after this response (its wish and the gateway's). */
  keepClient: boolean;
  responseTimeoutMs: number;
  clock: Clock;
}

/** Runs one exchange; the returned sink takes the request body from the client connection. */
export function exchange(opts: ExchangeOptions): { body: BodySink; outcome: Promise<ExchangeOutcome> } {
  const { client, request, stream, clock } = opts;
  let settled = false;
  let responseStarted = false;
  let responseDone = false;
  let requestDone = false;
  let reusable = false;
  let keepClient = opts.keepClient;
  let status = 0;
  let chunkedToClient = false;
  let resolveOutcome: (outcome: ExchangeOutcome) => void = () => {};
  const outcome = new Promise<ExchangeOutcome>((resolve) => {
    resolveOutcome = resolve;
  });
  const toClient = (data: Buffer): boolean => writeCoalesced(client, data);
  const toStream = (data: Buffer): boolean => stream.write(data);
  const chunkedRequest = request.framing?.kind === 'chunked';
  const headers = chunkedRequest ? [...opts.headers, 'Transfer-Encoding', 'chunked'] : opts.headers;

  const settle = (result: ExchangeOutcome): void => {
    if (settled) return;
    settled = true;
    timer.cancel();
    stream.removeListener('data', onStreamData);
    stream.removeListener('end', onStreamEnd);
    stream.removeListener('close', onStreamClose);
    stream.removeListener('drain', onStreamDrain);
    client.removeListener('drain', onClientDrain);
    client.removeListener('close', onClientClose);
    resolveOutcome(result);
  };
  const fail = (error: Error): void => {
    stream.destroy();
    settle(
      responseStarted
        ? { kind: 'failed', error, responseStarted: true }
        : { kind: 'failed', error, responseStarted: false },
    );
  };
  const maybeDone = (): void => {
    // The stream is reusable only when both directions ended cleanly at a message boundary; a
    // backend that answered before reading the whole body (e.g. 413) spent it.
    if (responseDone)
      settle({ kind: 'done', reusable: reusable && requestDone, keepClient: keepClient && requestDone, status });
  };

  const writeHead = (head: ResponseHead): void => {
    status = head.status;
    const out = forwardResponseHeaders(head.rawHeaders);
    // A body of unknown length is chunk-coded for an HTTP/1.1 client; an HTTP/1.0 client reads
    // it until the connection closes.
    if (head.bodyLength === undefined) {
      if (request.version === '1.1') chunkedToClient = true;
      else keepClient = false;
    }
    let text = `HTTP/1.1 ${head.status} ${head.statusMessage || STATUS_CODES[head.status] || ''}\r\n${headerLines(out)}`;
    if (chunkedToClient) text += 'Transfer-Encoding: chunked\r\n';
    if (!keepClient) text += 'Connection: close\r\n';
    else if (request.version === '1.0') text += 'Connection: keep-alive\r\n';
    writeCoalesced(client, Buffer.from(`${text}\r\n`, 'latin1'));
  };

  const parser = new ResponseParser(request.method === 'HEAD', {
    ...(request.upgrade
      ? {
          switched(head: ResponseHead, rest: Buffer) {
            // Only now may the client's bytes become a raw relay (never before the backend agreed).
            responseStarted = true;
            stream.pause();
            settle({ kind: 'switched', head, rest });
          },
        }
      : {}),
    head(head) {
      responseStarted = true;
      timer.cancel();
      reusable = head.keepAlive;
      // An upgrade the backend declined: the client's connection may hold bytes of the protocol
      // it hoped for, so it ends after this response, and the stream is not pooled.
      if (request.upgrade) {
        keepClient = false;
        reusable = false;
      }
      writeHead(head);
    },
    body(chunk) {
      const ok = chunkedToClient ? writeChunk(toClient, chunk) : toClient(chunk);
      if (!ok) stream.pause();
    },
    done() {
      responseDone = true;
      if (chunkedToClient) writeCoalesced(client, LAST_CHUNK);
      maybeDone();
    },
  });

  const { data: onStreamData, end: onStreamEnd } = parserInput(parser, fail, () => {
    reusable = false;
  });
  const onStreamClose = (): void => {
    if (!responseDone)
      fail(new WebgwError('WEBGW_ERR_BACKEND', 'tunnel stream closed before the response was complete'));
  };
  const onStreamDrain = (): void => {
    if (!requestDone) client.resume();
  };
  const onClientDrain = (): void => {
    stream.resume();
  };
  const onClientClose = (): void => {
    // The client left before its response was complete.
    if (!responseDone) fail(new WebgwError('WEBGW_ERR_STREAM_RESET', 'client closed the connection'));
  };

  // While the request body flows the timer is an idle timer (a slow upload is fine, a stalled
  // one is not); from the end of the request it bounds the wait for the response.
  const startTimer = () =>
    clock.setTimeout(() => {
      fail(
        new WebgwError(
          'WEBGW_ERR_TIMEOUT',
          requestDone
            ? `no response within ${opts.responseTimeoutMs} ms`
            : `request body stalled for ${opts.responseTimeoutMs} ms`,
        ),
      );
    }, opts.responseTimeoutMs);
  let timer = startTimer();
  const restartTimer = (): void => {
    if (responseStarted || settled) return;
    timer.cancel();
    timer = startTimer();
  };

  stream.on('data', onStreamData);
  stream.on('end', onStreamEnd);
  stream.on('close', onStreamClose);
  stream.on('drain', onStreamDrain);
  client.on('drain', onClientDrain);
  client.on('close', onClientClose);
  stream.write(serializeRequestHead(request.method, request.target, '1.1', headers));
  stream.resume();

  const body: BodySink = {
    body(chunk) {
      if (settled) return;
      restartTimer();
      const ok = chunkedRequest ? writeChunk(toStream, chunk) : toStream(chunk);
      if (!ok) client.pause();
    },
    end() {
      if (chunkedRequest && !settled) stream.write(LAST_CHUNK);
      requestDone = true;
      restartTimer();
      maybeDone();
    },
    abort(err) {
      fail(err);
    },
  };
  return { body, outcome };
}
