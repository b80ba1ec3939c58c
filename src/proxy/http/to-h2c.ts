/**
 * One HTTP/1.1 request served by a backend that speaks HTTP/2 (grant h2c): the head becomes an
 * HTTP/2 request on a pooled backend session (http2/h2c-sessions.ts), the body flows into it with
 * backpressure, and the response comes back in HTTP/1.1 framing (chunked when it has no length,
 * its trailers in the last chunk). Settles like exchange.ts.
 */
import { STATUS_CODES } from 'node:http';
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import type { Clock } from '../../common/clock.ts';
import { WebgwError } from '../../common/errors.ts';
import { writeCoalesced } from '../../common/relay.ts';
import { relayedHeaders } from '../http2/headers.ts';
import { writeChunk } from './chunked.ts';
import type { BodySink } from './client-connection.ts';
import type { RequestHead } from '../../common/http/request-parser.ts';

export type H2cExchangeOutcome =
  { kind: 'done'; keepClient: boolean; status: number } | { kind: 'failed'; error: Error; responseStarted: boolean };

const NO_BODY_STATUS = new Set([204, 304]);

/** Runs one exchange on `upstream`; the sink takes the request body from the client connection. */
export function exchangeH2c(
  client: Socket,
  request: RequestHead,
  upstream: ClientHttp2Stream,
  keepClient: boolean,
  responseTimeoutMs: number,
  clock: Clock,
): { body: BodySink; outcome: Promise<H2cExchangeOutcome> } {
  let settle: (outcome: H2cExchangeOutcome) => void = () => {};
  let settled = false;
  let responseStarted = false;
  let requestDone = request.framing === undefined;
  let chunked = false;
  let status = 0;
  let trailers: IncomingHttpHeaders | undefined;
  let keep = keepClient;
  const outcome = new Promise<H2cExchangeOutcome>((resolve) => {
    settle = (result) => {
      if (settled) return;
      settled = true;
      timer.cancel();
      client.off('drain', onClientDrain).off('close', onClientClose);
      resolve(result);
    };
  });
  const fail = (error: Error): void => {
    if (!upstream.closed) upstream.close(constants.NGHTTP2_CANCEL);
    settle({ kind: 'failed', error, responseStarted });
  };
  const timer = clock.setTimeout(
    () => fail(new WebgwError('WEBGW_ERR_TIMEOUT', `no response within ${responseTimeoutMs} ms`)),
    responseTimeoutMs,
  );
  const onClientDrain = (): void => {
    upstream.resume();
  };
  const onClientClose = (): void => fail(new WebgwError('WEBGW_ERR_STREAM_RESET', 'client closed the connection'));
  client.on('drain', onClientDrain).on('close', onClientClose);

  upstream.on('error', () => {}); // 'close' says how it ended
  upstream.once('response', (headers, flags) => {
    responseStarted = true;
    timer.cancel();
    status = Number(headers[':status']);
    const ended = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    const lines: string[] = [];
    let length = false;
    for (const [name, value] of Object.entries(relayedHeaders(headers, false))) {
      if (name === 'content-length') length = true;
      for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${String(v)}\r\n`);
    }
    const bodyless = ended || request.method === 'HEAD' || NO_BODY_STATUS.has(status);
    if (!bodyless && !length) {
      if (request.version === '1.1') chunked = true;
      else keep = false;
    }
    keep = keep && requestDone;
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${lines.join('')}`;
    if (chunked) head += 'Transfer-Encoding: chunked\r\n';
    if (bodyless && !length && !NO_BODY_STATUS.has(status) && request.method !== 'HEAD')
      head += 'Content-Length: 0\r\n';
    if (!keep) head += 'Connection: close\r\n';
    writeCoalesced(client, Buffer.from(`${head}\r\n`, 'latin1'));
    // Only now: node may deliver DATA that came with the HEADERS before it emits 'response'.
    upstream.on('data', (chunk: Buffer) => {
      const toClient = (data: Buffer): boolean => writeCoalesced(client, data);
      const ok = chunked ? writeChunk(toClient, chunk) : toClient(chunk);
      if (!ok) upstream.pause();
    });
  });
  upstream.on('trailers', (t) => {
    trailers = t;
  });
  upstream.on('wantTrailers', () => upstream.sendTrailers({}));
  upstream.once('close', () => {
    const code = upstream.rstCode ?? constants.NGHTTP2_NO_ERROR;
    if (code !== constants.NGHTTP2_NO_ERROR || !responseStarted) {
      fail(new WebgwError('WEBGW_ERR_BACKEND', `the backend reset the stream (HTTP/2 error ${code})`));
      return;
    }
    if (chunked) {
      let last = '0\r\n';
      for (const [name, value] of Object.entries(relayedHeaders(trailers ?? {}, false))) {
        for (const v of Array.isArray(value) ? value : [value]) last += `${name}: ${String(v)}\r\n`;
      }
      writeCoalesced(client, Buffer.from(`${last}\r\n`, 'latin1'));
    }
    settle({ kind: 'done', keepClient: keep && requestDone, status });
  });

  const body: BodySink = {
    body(chunk) {
      if (!settled && !upstream.write(chunk)) client.pause();
    },
    end() {
      requestDone = true;
      if (request.framing !== undefined && !upstream.closed) upstream.end();
    },
    abort(err) {
      fail(err);
    },
  };
  // Only while the body flows: the connection's reader pauses the socket between requests.
  upstream.on('drain', () => {
    if (!requestDone) client.resume();
  });
  return { body, outcome };
}
