/** The demo's private app: a page and a TCP echo, bound to loopback only. */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { pipeline } from 'node:stream';
import { listen } from '../common/net.ts';

export interface PrivateApp {
  httpPort: number;
  echoPort: number;
  close(): void;
}

function page(client: string, host: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>WebGW demo</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto">
<h1>Hello from a private app</h1>
<p>This app listens on loopback only and accepts no inbound connection from anywhere else.
Its WebGW agent dialed <em>out</em> to the gateway, and your request came back through that tunnel.</p>
<p>Host: <code>${escapeHtml(host)}</code><br>Your address (X-Forwarded-For): <code>${escapeHtml(client)}</code></p>
</body></html>
`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export async function startPrivateApp(): Promise<PrivateApp> {
  const http: HttpServer = createHttpServer((req, res) => {
    const body = page(String(req.headers['x-forwarded-for'] ?? 'direct'), String(req.headers.host ?? ''));
    res
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body) })
      .end(body);
  });
  const echo: TcpServer = createTcpServer((socket) => pipeline(socket, socket, () => socket.destroy()));
  const [h, e] = await Promise.all([listen(http, 0, '127.0.0.1'), listen(echo, 0, '127.0.0.1')]);
  return {
    httpPort: h.port,
    echoPort: e.port,
    close() {
      http.closeAllConnections();
      http.close();
      echo.close();
    },
  };
}
