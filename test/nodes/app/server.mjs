// The tenant's private app for the real-node tests: HTTP on 8080, TLS on 8443 (certificate from
// /tls, a Secret the test writes), a TCP echo on 9000. It answers with its pod name, so a test
// can tell which replica served it. Plain Node, no dependencies.
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import process from 'node:process';
import { setTimeout } from 'node:timers';

const pod = process.env.POD_NAME ?? hostname();

createHttpServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok');
  // Drain any body first: the size it had is part of the answer.
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
  });
  req.on('end', () =>
    res.end(
      `hello ${req.headers.host} from ${req.headers['x-forwarded-for'] ?? req.socket.remoteAddress} via ${pod} (${size} bytes)\n`,
    ),
  );
}).listen(8080);

if (existsSync('/tls/tls.crt')) {
  createTlsServer({ cert: readFileSync('/tls/tls.crt'), key: readFileSync('/tls/tls.key') }, (socket) => {
    socket.on('error', () => {});
    socket.end(`tls ok from ${pod}\n`);
  }).listen(8443);
}

createTcpServer((socket) => {
  socket.on('error', () => {});
  socket.on('data', (chunk) => socket.write(chunk));
  socket.on('end', () => socket.end());
}).listen(9000);

// A Deployment's pods are stopped with SIGTERM: finish what is in flight, then exit.
process.on('SIGTERM', () => setTimeout(() => process.exit(0), 1000));
