/**
 * HTTP/1.1 the agent decrypted itself (termination: Agent with backendProtocol: HTTP1) goes to
 * the backend as a proxy would send it: each request head gets the X-Forwarded-For, -Proto
 * (https), -Host and -Port fields of this hop, whatever the client claimed, and loses its
 * hop-by-hop fields (common/http/forwarded.ts, the gateway's rules). The client's bytes are read
 * with the gateway's request parser (bounded head, strict framing); bodies are passed on in their
 * framing (chunked again when they came chunked; trailers dropped, RFC 9110 §6.5.1); an Upgrade
 * (WebSocket) on the connection's first request becomes a raw relay once the backend answered
 * 101; declined, the connection ends after that answer, so bytes after a declined Upgrade are
 * never relayed unparsed (they could carry a forged X-Forwarded-For). A later Upgrade goes as a
 * plain request (its Connection/Upgrade fields dropped). Responses are relayed untouched. A
 * malformed request is answered 400 or 431 and the connection closed; it never reaches the
 * backend.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { forwardRequestHeaders, serializeRequestHead } from '../common/http/forwarded.ts';
import { writeCoalesced } from '../common/relay.ts';
import { HttpRequestError, RequestParser } from '../common/http/request-parser.ts';
import type { OpenRequest } from '../tunnel/open.ts';
import type { AgentMetrics } from './metrics.ts';

export const MAX_REQUEST_HEAD_BYTES = 16 * 1024;
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');
/** The backend switched protocols: the status line of its answer to the Upgrade. */
const SWITCHED = /^HTTP\/1\.[01] 101[ \r]/;

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
  /** parsed: requests; upgrading: an Upgrade sent, its answer awaited; raw: switched; declined: ends after the answer. */
  let mode: 'parsed' | 'upgrading' | 'raw' | 'declined' = 'parsed';
  let requests = 0;
  let held: Buffer[] = [];
  let answer = Buffer.alloc(0);
  let chunked = false;
  const toBackend = (data: Buffer): void => {
    if (!writeCoalesced(backend, data)) client.pause();
  };
  const parser = new RequestParser(MAX_REQUEST_HEAD_BYTES, {
    head: (head) => {
      // Only the first request may switch protocols: no earlier answer can then be mistaken for its 101.
      const upgrade = head.upgrade && requests === 0;
      requests += 1;
      const headers = forwardRequestHeaders(head.rawHeaders, {
        clientAddress: open.client.address,
        proto: 'https',
        port: open.local.port,
        upgrade,
      });
      if (!upgrade) {
        chunked = head.framing?.kind === 'chunked';
        if (chunked) headers.push('Transfer-Encoding', 'chunked');
        if (!head.keepAlive) headers.push('Connection', 'close');
      }
      toBackend(serializeRequestHead(head.method, head.target, head.version, headers));
      if (upgrade) {
        // What follows belongs to the new protocol, if the backend agrees: held until it answers.
        mode = 'upgrading';
        held = [parser.takeBuffered()];
        return;
      }
      parser.continue();
    },
    body: (chunk) => {
      if (chunk.length === 0) return;
      if (!chunked) return toBackend(chunk);
      toBackend(Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'));
      toBackend(chunk);
      toBackend(CRLF);
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
      client.end(
        `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
      );
      client.once('finish', teardown);
    }
  };
  client.on('data', (chunk: Buffer) => {
    if (mode === 'raw') toBackend(chunk);
    else if (mode === 'upgrading') {
      held.push(chunk);
      client.pause(); // bounded: the rest waits in the socket until the backend answered
    } else if (mode === 'parsed') guarded(() => parser.feed(chunk));
    // declined: the client's bytes after it are dropped; the connection ends after the answer.
  });
  backend.on('drain', () => client.resume());
  /** The first bytes of the answer to an Upgrade say whether the connection switched. */
  const decide = (chunk: Buffer): void => {
    answer = Buffer.concat([answer, chunk]);
    if (answer.length < 13 && !answer.includes(CRLF)) return;
    if (SWITCHED.test(answer.toString('latin1', 0, 16))) {
      mode = 'raw';
      for (const h of held) if (h.length > 0) toBackend(h);
      held = [];
      client.resume();
    } else {
      mode = 'declined';
      held = [];
      backend.end();
      client.resume();
    }
  };
  // Responses, untouched, with backpressure.
  backend.on('data', (chunk: Buffer) => {
    if (mode === 'upgrading') decide(chunk);
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
