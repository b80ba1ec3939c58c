/**
 * What the tunnels forward to, on loopback: nginx (HTTP, `/1k` and `/1m`), an iperf3 server,
 * nginx terminating TLS in front of that nginx (the HTTPS baseline),
 * and a holder that accepts and keeps idle connections (a child process, so 10,000 of them do
 * not share the benchmark's file limit) and reports how many it holds.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { freeLoopbackPort } from '../../src/common/net.ts';
import { spawnTool, stopChild, waitForPort } from './proc.ts';

export interface Backend {
  port: number;
  stop(): Promise<void>;
}

export async function startNginx(dir: string): Promise<Backend> {
  const root = join(dir, 'www');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, '1k'), Buffer.alloc(1024, 'a'));
  writeFileSync(join(root, '1m'), Buffer.alloc(1024 * 1024, 'b'));
  return runNginx(
    dir,
    [root],
    (port) => `
  keepalive_timeout 75s;
  sendfile on;
  server { listen 127.0.0.1:${port} backlog=4096; root ${root}; location / { default_type application/octet-stream; } }`,
  );
}

/**
 * nginx terminating TLS and proxying to `backendPort`, tuned as its docs advise: a shared
 * session cache (tickets are on by default), HTTP/2 offered by ALPN, HTTP/1.1 keep-alive to the
 * upstream.
 */
export function startNginxTlsProxy(
  dir: string,
  backendPort: number,
  tls: { cert: string; key: string },
): Promise<Backend> {
  return runNginx(
    dir,
    [],
    (port) => `
  upstream backend { server 127.0.0.1:${backendPort}; keepalive 256; }
  ssl_session_cache shared:SSL:10m;
  ssl_session_timeout 1h;
  server {
    listen 127.0.0.1:${port} ssl http2 backlog=4096;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host; }
  }`,
  );
}

/** One nginx worker in the foreground, with `http` (given its port) inside the common settings. */
async function runNginx(dir: string, readable: string[], http: (port: number) => string): Promise<Backend> {
  const tmp = join(dir, 'nginx-tmp');
  mkdirSync(tmp, { recursive: true });
  // nginx workers run unprivileged: they must be able to traverse the temp folders.
  for (const d of [dirname(dir), dir, ...readable]) chmodSync(d, 0o755);
  const port = await freeLoopbackPort();
  writeFileSync(
    join(dir, 'nginx.conf'),
    `
worker_processes 1;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log stderr error;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path ${tmp}; proxy_temp_path ${tmp}; fastcgi_temp_path ${tmp}; uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};
  keepalive_requests 1000000;${http(port)}
}`,
  );
  const child = spawnTool('nginx', ['-c', join(dir, 'nginx.conf'), '-e', 'stderr']);
  await waitForPort(port);
  return { port, stop: () => stopChild(child) };
}

export async function startIperfServer(): Promise<Backend> {
  const port = await freeLoopbackPort();
  const child = spawnTool('iperf3', ['-s', '-B', '127.0.0.1', '-p', String(port)]);
  await waitForPort(port);
  return { port, stop: () => stopChild(child) };
}

export interface Holder extends Backend {
  /** Connections it holds now. */
  count(): Promise<number>;
}

export async function startHolder(): Promise<Holder> {
  const child: ChildProcess = fork(join(import.meta.dirname, 'holder-process.ts'), [], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve) =>
    child.once('message', (m) => resolve((m as { port: number }).port)),
  );
  return {
    port,
    count: () =>
      new Promise((resolve) => {
        child.once('message', (m) => resolve((m as { count: number }).count));
        child.send('count');
      }),
    stop: () => stopChild(child),
  };
}
