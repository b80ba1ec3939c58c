/**
 * A TLS route the agent terminates (ExposedService `termination: Agent`): the gateway passed the
 * client's TLS through by SNI, so the handshake happens here, beside the workload, and the edge
 * only ever relays ciphertext. The ClientHello is read first (bounded in bytes and time) to tell
 * an ACME TLS-ALPN-01 validation (it offers only `acme-tls/1`, RFC 8737 §3) from a client: the
 * validation gets the challenge certificate and the connection ends after the handshake; a
 * client gets the route's certificate and its plaintext goes to the backend, after ALPN chose
 * one of the protocols the route says the backend speaks (`h2` for an h2c backend: the decrypted
 * HTTP/2 is what it expects).
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { MAX_HELLO_BYTES, parseClientHello, tlsAlert } from '../common/client-hello.ts';
import { describeError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { ResetCode } from '../tunnel/frame.ts';
import type { TunnelStream } from '../tunnel/stream.ts';
import { dialBackend, relayToBackend, writeProxyHeader } from './backend.ts';
import { relayHttp1 } from './http-forwarding.ts';
import type { AgentMetrics } from './metrics.ts';
import type { CompiledRoute } from './routes.ts';
import type { TlsCertificates } from './tls-certificates.ts';

export const ACME_TLS_ALPN = 'acme-tls/1';

export interface TerminateOptions {
  certificates: TlsCertificates;
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  logger: Logger;
  metrics: AgentMetrics;
}

export function serveTerminated(stream: TunnelStream, route: CompiledRoute, opts: TerminateOptions): void {
  const hostname = route.hostname;
  const loaded = opts.certificates.get(hostname);
  if (!loaded?.certificate && !loaded?.challenge) {
    opts.metrics.streams.inc({ protocol: 'tls', result: 'no-certificate' });
    stream.refuse(ResetCode.NO_ROUTE, `agent has no certificate for ${hostname} yet`);
    return;
  }
  stream.accept();
  stream.on('error', () => {});
  // One bound for the hello and the handshake, on the agent's own clock.
  const timer = setTimeout(() => fail('handshake timed out'), opts.handshakeTimeoutMs);
  const fail = (why: string, alert?: Buffer): void => {
    clearTimeout(timer);
    opts.metrics.streams.inc({ protocol: 'tls', result: 'tls-failed' });
    opts.logger.debug('TLS handshake failed', { hostname, why });
    if (alert && !stream.destroyed) stream.end(alert);
    else stream.destroy();
  };
  stream.once('close', () => clearTimeout(timer));

  let buffered = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    buffered = Buffer.concat([buffered, chunk]);
    let hello;
    try {
      hello = parseClientHello(buffered.subarray(0, MAX_HELLO_BYTES));
    } catch (err) {
      stream.removeListener('data', onData);
      fail(describeError(err), tlsAlert('handshake_failure'));
      return;
    }
    if (hello.state === 'more') return;
    stream.removeListener('data', onData);
    stream.pause();
    stream.unshift(buffered);
    const validation = hello.alpn.includes(ACME_TLS_ALPN);
    // What is loaded now: a renewal or challenge may have landed since the stream opened.
    const now = opts.certificates.get(hostname);
    const context = validation ? now?.challenge : now?.certificate;
    if (!context) {
      fail(validation ? 'no ACME challenge is pending' : 'no certificate yet', tlsAlert('handshake_failure'));
      return;
    }
    handshake(context, validation);
  };
  stream.on('data', onData);

  const handshake = (context: SecureContext, validation: boolean): void => {
    const alpn = validation ? [ACME_TLS_ALPN] : route.terminate?.alpn;
    const secure = new TLSSocket(stream, {
      isServer: true,
      secureContext: context,
      ...(alpn ? { ALPNProtocols: alpn } : {}),
    });
    let secured = false;
    secure.on('error', (err) => {
      // After the handshake an error is the connection's end, not a failed handshake.
      if (!secured) fail(describeError(err));
      secure.destroy();
    });
    secure.once('secure', () => {
      secured = true;
      clearTimeout(timer);
      if (validation) {
        // RFC 8737 §3: the validation needs the handshake only.
        opts.metrics.streams.inc({ protocol: 'tls', result: 'acme-challenge' });
        opts.logger.info('answered an ACME TLS-ALPN-01 validation', { hostname });
        secure.end();
        return;
      }
      secure.pause();
      dialBackend(
        route.backend,
        opts,
        (err, socket?: Socket) => {
          if (err || !socket) {
            opts.metrics.streams.inc({ protocol: 'tls', result: 'backend-unreachable' });
            secure.destroy();
            return;
          }
          if (secure.destroyed) {
            socket.destroy();
            return;
          }
          writeProxyHeader(socket, route.backend, stream.request);
          if (route.terminate?.forwardedHeaders) relayHttp1(secure, socket, stream.request, opts.metrics);
          else relayToBackend(secure, socket, 'tls', opts.metrics);
        },
        secure,
      );
    });
  };
}
