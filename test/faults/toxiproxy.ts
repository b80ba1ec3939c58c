/**
 * Toxiproxy (Shopify) as the fault tests drive it: one server process per test file, built from
 * the Go module proxy by test/cluster/build.sh, and its REST API (proxies, toxics). A proxy
 * listens on a loopback port of its own and forwards to an upstream; toxics degrade one direction
 * of it: `upstream` is what the client (the agent) sends, `downstream` what it receives.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { binDir } from '../../scripts/tool-cache.ts';
import { freeWildcardPort } from '../helpers/ports.ts';

export type ToxicType = 'latency' | 'bandwidth' | 'slow_close' | 'timeout' | 'reset_peer' | 'slicer' | 'limit_data';

export interface Toxic {
  type: ToxicType;
  stream?: 'upstream' | 'downstream';
  toxicity?: number;
  attributes: Record<string, number>;
}

export class Toxiproxy {
  private readonly child: ChildProcess;
  private readonly api: string;

  private constructor(child: ChildProcess, api: string) {
    this.child = child;
    this.api = api;
  }

  static binary(): string {
    return join(binDir(), 'toxiproxy-server');
  }

  static available(): boolean {
    return existsSync(Toxiproxy.binary());
  }

  static async start(): Promise<Toxiproxy> {
    const port = await freeWildcardPort();
    const child = spawn(Toxiproxy.binary(), ['-host', '127.0.0.1', '-port', String(port)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'error' },
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4096);
    });
    const api = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`toxiproxy-server exited (${child.exitCode}): ${stderr}`);
      const up = await fetch(`${api}/version`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) return new Toxiproxy(child, api);
      if (Date.now() > deadline) throw new Error(`toxiproxy-server did not answer in 10 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A proxy on a free loopback port to 127.0.0.1:upstreamPort. */
  async proxy(name: string, upstreamPort: number): Promise<ToxicProxy> {
    const body = await this.call('POST', '/proxies', {
      name,
      listen: '127.0.0.1:0',
      upstream: `127.0.0.1:${upstreamPort}`,
      enabled: true,
    });
    const port = Number(/:(\d+)$/.exec(String((body as { listen: string }).listen))![1]);
    return new ToxicProxy(this, name, port);
  }

  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${this.api}${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`toxiproxy ${method} ${path}: ${res.status} ${text}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    await new Promise((r) => this.child.once('exit', r));
  }
}

export class ToxicProxy {
  private seq = 0;
  private readonly server: Toxiproxy;
  readonly name: string;
  /** Where clients connect. */
  readonly port: number;

  constructor(server: Toxiproxy, name: string, port: number) {
    this.server = server;
    this.name = name;
    this.port = port;
  }

  /** Adds a toxic; resolves with its name, for remove(). */
  async add(toxic: Toxic): Promise<string> {
    const name = `${toxic.type}-${toxic.stream ?? 'downstream'}-${this.seq++}`;
    await this.server.call('POST', `/proxies/${this.name}/toxics`, {
      name,
      type: toxic.type,
      stream: toxic.stream ?? 'downstream',
      toxicity: toxic.toxicity ?? 1,
      attributes: toxic.attributes,
    });
    return name;
  }

  /** The same toxic on both directions. */
  async addBoth(toxic: Omit<Toxic, 'stream'>): Promise<string[]> {
    return [await this.add({ ...toxic, stream: 'upstream' }), await this.add({ ...toxic, stream: 'downstream' })];
  }

  async remove(...names: string[]): Promise<void> {
    for (const n of names) await this.server.call('DELETE', `/proxies/${this.name}/toxics/${n}`);
  }

  /** Disabled, the proxy closes its connections and refuses new ones. */
  async setEnabled(enabled: boolean): Promise<void> {
    await this.server.call('POST', `/proxies/${this.name}`, { enabled });
  }
}
