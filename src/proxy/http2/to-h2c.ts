/**
 * One HTTP/2 request relayed to an HTTP/2 backend stream (h2c-sessions.ts): body and trailers
 * both ways with HTTP/2 flow control as backpressure (gRPC's status travels in the response
 * trailers), resets passed on. Settles once the exchange is over.
 */
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Clock } from '../../common/clock.ts';
import { WebgwError } from '../../common/errors.ts';
import { relayedHeaders } from './headers.ts';

export type H2cOutcome = { kind: 'done'; status: number } | { kind: 'failed'; error: Error; responseStarted: boolean };

/** RST_STREAM codes defined by RFC 9113 §7; anything else is passed on as INTERNAL_ERROR. */
const MAX_ERROR_CODE = 0xd;

export function relayHttp2(
  client: ServerHttp2Stream,
  upstream: ClientHttp2Stream,
  responseTimeoutMs: number,
  clock: Clock,
): Promise<H2cOutcome> {
  return new Promise<H2cOutcome>((resolve) => {
    let settled = false;
    let responseEnded = false;
    let responseStarted = false;
    let status = 0;
    let responseTrailers: IncomingHttpHeaders | undefined;
    let requestTrailers: IncomingHttpHeaders | undefined;
    const settle = (outcome: H2cOutcome): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      resolve(outcome);
    };
    const timer = clock.setTimeout(() => {
      upstream.close(constants.NGHTTP2_CANCEL);
      settle({
        kind: 'failed',
        error: new WebgwError('WEBGW_ERR_TIMEOUT', `no response within ${responseTimeoutMs} ms`),
        responseStarted,
      });
    }, responseTimeoutMs);

    upstream.on('error', () => {}); // 'close' says how it ended
    client.on('error', () => {});
    upstream.once('response', (headers, flags) => {
      responseStarted = true;
      timer.cancel();
      status = Number(headers[':status']);
      if (client.destroyed) return;
      // Trailers-only (gRPC's answer for an error): the response ends with its HEADERS frame.
      if ((flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0) {
        responseEnded = true;
        client.respond(relayedHeaders(headers, true), { endStream: true });
        return;
      }
      client.respond(relayedHeaders(headers, true), { waitForTrailers: true });
      pump(upstream, client);
    });
    upstream.on('trailers', (trailers) => {
      responseTrailers = trailers;
    });
    client.on('wantTrailers', () => {
      responseEnded = true;
      client.sendTrailers(responseTrailers ? relayedHeaders(responseTrailers, false) : {});
    });
    upstream.once('close', () => {
      const code = upstream.rstCode ?? constants.NGHTTP2_NO_ERROR;
      if (code === constants.NGHTTP2_NO_ERROR && responseStarted) {
        settle({ kind: 'done', status });
        return;
      }
      const error = new WebgwError('WEBGW_ERR_BACKEND', `the backend reset the stream (HTTP/2 error ${code})`);
      if (responseStarted && !client.destroyed)
        client.close(code <= MAX_ERROR_CODE ? code : constants.NGHTTP2_INTERNAL_ERROR);
      settle({ kind: 'failed', error, responseStarted });
    });

    // Request body and trailers.
    if (!client.endAfterHeaders) {
      client.on('trailers', (trailers) => {
        requestTrailers = trailers;
      });
      upstream.on('wantTrailers', () => {
        upstream.sendTrailers(requestTrailers ? relayedHeaders(requestTrailers, false) : {});
      });
      pump(client, upstream);
    }
    client.once('close', () => {
      if (responseEnded && client.rstCode === constants.NGHTTP2_NO_ERROR) {
        settle({ kind: 'done', status });
        return;
      }
      if (!upstream.closed) upstream.close(constants.NGHTTP2_CANCEL);
      settle({
        kind: 'failed',
        error: new WebgwError('WEBGW_ERR_STREAM_RESET', 'the client reset its stream'),
        responseStarted,
      });
    });
  });
}

/**
 * `from`'s data into `to` with backpressure, `to` ended when `from` ends. Not stream.pipeline:
 * a reset must reach the other side with its own HTTP/2 code, which the callers' 'close'
 * handlers pass on; pipeline would destroy both with an error of its own first.
 */
function pump(from: Duplex, to: Duplex): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.destroyed && !to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.once('end', () => {
    if (!to.destroyed) to.end();
  });
}
