/**
 * The admin listener shared by gateway and agent: `/healthz` (the process serves), `/readyz`
 * (the component can do its job) and `/metrics` (prom-client, from the registry passed in).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { Lifecycle } from './lifecycle.ts';
import { listen, closeServer } from './net.ts';

export interface AdminServerOptions {
  address: string;
  port: number;
  /** Bind with SO_REUSEPORT (common/net.ts listen). */
  reusePort?: boolean;
  registry: Registry;
  /** Returns undefined when ready, else the reason it is not. */
  notReadyReason: () => string | undefined;
}

export class AdminServer {
  private readonly server: Server;
  private readonly life = new Lifecycle();
  private readonly opts: AdminServerOptions;

  constructor(opts: AdminServerOptions) {
    this.opts = opts;
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        const reason = this.opts.notReadyReason();
        res
          .writeHead(reason ? 503 : 200, { 'content-type': 'text/plain' })
          .end(reason ? `not ready: ${reason}\n` : 'ready\n');
      } else if (path === '/metrics') {
        this.opts.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': this.opts.registry.contentType }).end(text),
          (err: Error) => res.writeHead(500).end(err.message),
        );
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      }
    });
    this.server.headersTimeout = 5000;
    this.server.requestTimeout = 10_000;
  }

  async start(): Promise<AddressInfo> {
    return listen(this.server, this.opts.port, this.opts.address, { reusePort: this.opts.reusePort });
  }

  close(): Promise<void> {
    return this.life.close(() => closeServer(this.server));
  }
}
