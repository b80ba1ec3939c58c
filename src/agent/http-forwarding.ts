/**
 * HTTP/1.1 the agent decrypted itself (termination: Agent with backendProtocol: HTTP1) goes to
 * the backend as a proxy would send it: each request head gets the X-Forwarded-For, -Proto
 * (https), -Host and -Port fields of this hop, whatever the client claimed, and loses its
 * hop-by-hop fields (common/http/forwarded.ts, the gateway's rules). The client's bytes are read
 * with the gateway's request parser (bounded head, strict framing); bodies are passed on in their
 * framing (chunked again when they came chunked; trailers dropped, RFC 9110 §6.5.1); an Upgrade
 * (WebSocket) becomes a raw relay after its head. Responses are relayed untouched. A malformed
 * request is answered 400 or 431 and the connection closed; it never reaches the backend.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { forwardRequestHeaders, serializeRequestHead } from '../common/http/forwarded.ts';
import { HttpRequestError, RequestParser } from '../common/http/request-parser.ts';
import type { OpenRequest } from '../tunnel/open.ts';
import type { AgentMetrics } from './metrics.ts';

export const MAX_REQUEST_HEAD_BYTES = 16 * 1024;
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

export function relayHttp1(client: Duplex, backend: Socket, open: OpenRequest, metrics: AgentMetrics): void {
  metrics.streams.inc({ protocol: 'tls', result: 'served' });
  metrics.activeStreams.inc();
  let finished = false;
  const teardown = (): void => {
    if (finished) return;
    finished = true;
    metrics.activeStreams.dec();
    client.destroy();
    backend.destroy();
  };
  let raw = false;
  let chunked = false;
  const toBackend = (data: Buffer): void => {
    if (!backend.write(data)) client.pause();
  };
  const parser = new RequestParser(MAX_REQUEST_HEAD_BYTES, {
    head: (head) => {
      const headers = forwardRequestHeaders(head.rawHeaders, { clientAddress: open.client.address, proto: 'https', port: open.local.port, upgrade: head.upgrade });
      if (!head.upgrade) {
        chunked = head.framing?.kind === 'chunked';
        if (chunked) headers.push('Transfer-Encoding', 'chunked');
        if (!head.keepAlive) headers.push('Connection', 'close');
      }
      toBackend(serializeRequestHead(head.method, head.target, head.version, headers));
      if (head.upgrade) {
        // The rest of the connection belongs to the new protocol.
        raw = true;
        const rest = parser.takeBuffered();
        if (rest.length > 0) toBackend(rest);
        return;
      }
      parser.continue();
    },
    body: (chunk) => {
      if (chunk.length === 0) return;
      toBackend(chunked ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'), chunk, Buffer.from('\r\n', 'latin1')]) : chunk);
    },
    done: () => {
      if (chunked) toBackend(LAST_CHUNK);
      chunked = false;
      // Not from inside the parser's own loop: the next request starts after it returned.
      queueMicrotask(() => guarded(() => parser.next()));
    },
  });
  /** Runs the parser; a malformed request is answered here and ends the connection. */
  const guarded = (step: () => void): void => {
    if (finished) return;
    try {
      step();
    } catch (err) {
      const status = err instanceof HttpRequestError ? err.status : 400;
      metrics.streams.inc({ protocol: 'tls', result: 'bad-request' });
      backend.destroy();
      client.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      client.once('finish', teardown);
    }
  };
  client.on('data', (chunk: Buffer) => {
    if (raw) toBackend(chunk);
    else guarded(() => parser.feed(chunk));
  });
  backend.on('drain', () => client.resume());
  // Responses, untouched, with backpressure.
  backend.on('data', (chunk: Buffer) => {
    if (!client.write(chunk)) backend.pause();
  });
  client.on('drain', () => backend.resume());
  client.on('end', () => backend.end());
  backend.on('end', () => client.end());
  for (const side of [client, backend]) {
    side.on('error', teardown);
    side.on('close', () => {
      // Both directions must be done before a clean close; otherwise it is a reset.
      if (side === backend && !client.writableEnded) teardown();
      if (side === client) teardown();
    });
  }
  client.resume();
}
