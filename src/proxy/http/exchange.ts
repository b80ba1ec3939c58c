/**
 * One request/response exchange over a keep-alive tunnel stream: write the request head and
 * body (HTTP/1.1 framing), parse the response (response-parser.ts) into the client's
 * ServerResponse, with backpressure both ways. Settles with whether the stream can carry the
 * next request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WebgwError } from '../../common/errors.ts';
import type { Clock } from '../../common/clock.ts';
import type { TunnelStream } from '../../tunnel/stream.ts';
import { forwardResponseHeaders, serializeRequestHead } from './headers.ts';
import { ResponseParser } from './response-parser.ts';

export type ExchangeOutcome =
  /** The response was delivered; `reusable` says whether the stream may serve another request. */
  | { kind: 'done'; reusable: boolean }
  /** Failed before any response byte reached the client: the caller may answer 5xx or retry. */
  | { kind: 'failed'; error: Error; responseStarted: false }
  /** Failed mid-response: the client connection was cut. */
  | { kind: 'failed'; error: Error; responseStarted: true };

export interface ExchangeOptions {
  req: IncomingMessage;
  res: ServerResponse;
  stream: TunnelStream;
  /** Request headers already rewritten for the backend (X-Forwarded-*, no hop-by-hop). */
  headers: string[];
  responseTimeoutMs: number;
  clock: Clock;
}

const LAST_CHUNK = Buffer.from('0\r\n\r\n');

export function exchange(opts: ExchangeOptions): Promise<ExchangeOutcome> {
  const { req, res, stream, clock } = opts;
  return new Promise((resolve) => {
    let settled = false;
    let responseStarted = false;
    let responseDone = false;
    let requestDone = false;
    let reusable = false;
    const chunkedRequest = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] !== undefined;
    const headers = chunkedRequest ? [...opts.headers, 'Transfer-Encoding', 'chunked'] : opts.headers;

    const settle = (outcome: ExchangeOutcome): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      stream.removeListener('data', onStreamData);
      stream.removeListener('end', onStreamEnd);
      stream.removeListener('close', onStreamClose);
      stream.removeListener('drain', onStreamDrain);
      res.removeListener('drain', onResDrain);
      res.removeListener('close', onResClose);
      req.removeListener('data', onReqData);
      req.removeListener('end', onReqEnd);
      resolve(outcome);
    };
    const fail = (error: Error): void => {
      stream.destroy();
      settle(responseStarted ? { kind: 'failed', error, responseStarted: true } : { kind: 'failed', error, responseStarted: false });
    };
    const maybeDone = (): void => {
      // Reusable only when both directions ended cleanly at a message boundary.
      if (responseDone && requestDone) settle({ kind: 'done', reusable });
      else if (responseDone) {
        // The backend answered before reading the whole body (e.g. 413): the stream is spent.
        reusable = false;
        settle({ kind: 'done', reusable: false });
      }
    };

    const parser = new ResponseParser(req.method === 'HEAD', {
      head(head) {
        responseStarted = true;
        timer.cancel();
        res.writeHead(head.status, head.statusMessage, forwardResponseHeaders(head.rawHeaders));
        reusable = head.keepAlive;
      },
      body(chunk) {
        if (!res.write(chunk)) stream.pause();
      },
      done() {
        responseDone = true;
        res.end();
        maybeDone();
      },
    });

    const onStreamData = (chunk: Buffer): void => {
      try {
        parser.feed(chunk);
      } catch (err) {
        fail(err as Error);
      }
    };
    const onStreamEnd = (): void => {
      try {
        parser.end();
        reusable = false;
      } catch (err) {
        fail(err as Error);
      }
    };
    const onStreamClose = (): void => {
      if (!responseDone) fail(new WebgwError('WEBGW_ERR_BACKEND', 'tunnel stream closed before the response was complete'));
    };
    const onStreamDrain = (): void => {
      req.resume();
    };
    const onResDrain = (): void => {
      stream.resume();
    };
    const onResClose = (): void => {
      // The client left before its response was complete.
      if (!res.writableFinished) fail(new WebgwError('WEBGW_ERR_STREAM_RESET', 'client closed the connection'));
    };
    const onReqData = (chunk: Buffer): void => {
      const ok = chunkedRequest
        ? stream.write(`${chunk.length.toString(16)}\r\n`) && stream.write(chunk) && stream.write('\r\n')
        : stream.write(chunk);
      if (!ok) req.pause();
    };
    const onReqEnd = (): void => {
      if (chunkedRequest) stream.write(LAST_CHUNK);
      requestDone = true;
      if (responseDone) maybeDone();
    };

    const timer = clock.setTimeout(() => {
      fail(new WebgwError('WEBGW_ERR_TIMEOUT', `no response within ${opts.responseTimeoutMs} ms`));
    }, opts.responseTimeoutMs);

    stream.on('data', onStreamData);
    stream.on('end', onStreamEnd);
    stream.on('close', onStreamClose);
    stream.on('drain', onStreamDrain);
    res.on('drain', onResDrain);
    res.on('close', onResClose);
    stream.write(serializeRequestHead(req.method ?? 'GET', req.url ?? '/', '1.1', headers));
    if (req.complete && req.readableLength === 0) {
      requestDone = true;
    } else {
      req.on('data', onReqData);
      req.on('end', onReqEnd);
    }
    stream.resume();
  });
}
