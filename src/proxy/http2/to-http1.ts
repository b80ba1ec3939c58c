/**
 * One HTTP/2 request served by an HTTP/1.1 backend: the request goes over a keep-alive tunnel
 * stream in HTTP/1.1 framing (Content-Length as the client gave it, else chunked), the response
 * is parsed (http/response-parser.ts) and sent back on the client's HTTP/2 stream, with
 * backpressure both ways. Settles with whether the tunnel stream can carry the next request.
 */
import { constants, type ServerHttp2Stream } from 'node:http2';
import type { Clock } from '../../common/clock.ts';
import { WebgwError } from '../../common/errors.ts';
import type { TunnelStream } from '../../tunnel/stream.ts';
import { LAST_CHUNK, parserInput, writeChunk } from '../http/chunked.ts';
import { serializeRequestHead } from '../http/headers.ts';
import { ResponseParser } from '../http/response-parser.ts';
import { http2ResponseHeaders } from './headers.ts';

export type Http1Outcome =
  | { kind: 'done'; reusable: boolean; status: number }
  /** `responseStarted` false: nothing reached the client, which may get a 5xx (or a retry). */
  | { kind: 'failed'; error: Error; responseStarted: boolean };

export interface Http1ExchangeOptions {
  client: ServerHttp2Stream;
  stream: TunnelStream;
  method: string;
  path: string;
  /** Request fields for the backend, Host first (headers.ts http1RequestFields). */
  fields: string[];
  responseTimeoutMs: number;
  clock: Clock;
}

export function exchangeHttp1(opts: Http1ExchangeOptions): Promise<Http1Outcome> {
  const { client, stream, clock } = opts;
  const hasBody = !client.endAfterHeaders;
  const framed = opts.fields.some(
    (_, i) => i % 2 === 0 && (opts.fields[i] as string).toLowerCase() === 'content-length',
  );
  const chunked = hasBody && !framed;
  const fields = chunked ? [...opts.fields, 'Transfer-Encoding', 'chunked'] : opts.fields;
  return new Promise<Http1Outcome>((resolve) => {
    let settled = false;
    let requestDone = !hasBody;
    let responseStarted = false;
    let status = 0;
    let keepAlive = false;

    const settle = (outcome: Http1Outcome): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      stream.off('data', onStreamData).off('end', onStreamEnd).off('close', onStreamClose).off('drain', onStreamDrain);
      client.off('data', onClientData).off('end', onClientEnd).off('close', onClientClose).off('drain', onClientDrain);
      resolve(outcome);
    };
    const fail = (error: Error): void => {
      stream.destroy();
      if (responseStarted && !client.destroyed) client.close(constants.NGHTTP2_INTERNAL_ERROR);
      settle({ kind: 'failed', error, responseStarted });
    };

    const parser = new ResponseParser(opts.method === 'HEAD', {
      head(head) {
        responseStarted = true;
        timer.cancel();
        status = head.status;
        keepAlive = head.keepAlive;
        if (client.destroyed) return;
        client.respond(http2ResponseHeaders(head.status, head.rawHeaders));
      },
      body(chunk) {
        if (!client.destroyed && !client.write(chunk)) stream.pause();
      },
      done() {
        if (!client.destroyed) client.end();
        // A backend that answered before the whole body came: the client may stop sending.
        if (!requestDone && !client.destroyed) client.close(constants.NGHTTP2_NO_ERROR);
        settle({ kind: 'done', reusable: keepAlive && requestDone, status });
      },
    });

    const { data: onStreamData, end: onStreamEnd } = parserInput(parser, fail, () => {
      keepAlive = false;
    });
    const onStreamClose = (): void =>
      fail(new WebgwError('WEBGW_ERR_BACKEND', 'tunnel stream closed before the response was complete'));
    const onStreamDrain = (): void => {
      client.resume();
    };
    const onClientDrain = (): void => {
      stream.resume();
    };
    const onClientData = (chunk: Buffer): void => {
      restartTimer();
      const toStream = (data: Buffer): boolean => stream.write(data);
      if (!(chunked ? writeChunk(toStream, chunk) : toStream(chunk))) client.pause();
    };
    const onClientEnd = (): void => {
      if (chunked) stream.write(LAST_CHUNK);
      requestDone = true;
      restartTimer();
    };
    const onClientClose = (): void => fail(new WebgwError('WEBGW_ERR_STREAM_RESET', 'the client reset its stream'));

    // While the body flows this is an idle timer; from its end, the wait for the response.
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

    stream.on('data', onStreamData).on('end', onStreamEnd).on('close', onStreamClose).on('drain', onStreamDrain);
    client.on('close', onClientClose).on('drain', onClientDrain);
    if (hasBody) client.on('data', onClientData).on('end', onClientEnd);
    stream.write(serializeRequestHead(opts.method, opts.path, '1.1', fields));
    stream.resume();
  });
}
