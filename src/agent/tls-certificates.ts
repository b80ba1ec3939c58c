/**
 * The certificates of the TLS routes this agent terminates (`terminate` in its config): per
 * hostname the certificate and key, and the ACME TLS-ALPN-01 challenge certificate while an order
 * waits for validation. They arrive in the credential Secret's volume after the agent started
 * (the controller orders them once the route exists), change at every renewal and challenge, and
 * are reloaded live: a handshake uses what was loaded last, open connections keep theirs. A file
 * that does not load (half-written, key and certificate not a pair) keeps the previous one.
 */
import { X509Certificate } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Clock } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import { FileWatcher } from '../common/file-watcher.ts';
import type { Logger } from '../common/log.ts';
import type { TerminateFiles } from './config.ts';
import type { AgentMetrics } from './metrics.ts';

export interface TerminationContexts {
  /** The route's certificate; undefined until it was issued. */
  certificate?: SecureContext;
  /** Answers `acme-tls/1` handshakes while a validation is due. */
  challenge?: SecureContext;
}

export interface TlsCertificatesOptions {
  routes: ReadonlyArray<{ hostname: string; terminate: TerminateFiles }>;
  pollMs: number;
  clock: Clock;
  logger: Logger;
  metrics: AgentMetrics;
}

const exists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  );

export class TlsCertificates {
  private readonly opts: TlsCertificatesOptions;
  private readonly loaded = new Map<string, TerminationContexts>();
  private readonly watcher: FileWatcher | undefined;

  constructor(opts: TlsCertificatesOptions) {
    this.opts = opts;
    const files = opts.routes.flatMap((r) => [r.terminate.certFile, r.terminate.keyFile, r.terminate.challengeFile]);
    this.watcher =
      files.length === 0
        ? undefined
        : new FileWatcher({
            // The files that exist now: one appearing or going away is a change too.
            files: async () =>
              (await Promise.all(files.map(async (f) => ((await exists(f)) ? f : undefined)))).filter(
                (f): f is string => f !== undefined,
              ),
            dirs: [...new Set(files.map((f) => dirname(f)))],
            pollMs: opts.pollMs,
            clock: opts.clock,
            onChange: () => void this.load(),
          });
  }

  async start(): Promise<void> {
    await this.load();
    await this.watcher?.start();
  }

  close(): void {
    this.watcher?.close();
  }

  get(hostname: string): TerminationContexts | undefined {
    return this.loaded.get(hostname);
  }

  private async load(): Promise<void> {
    for (const { hostname, terminate } of this.opts.routes) {
      const log = this.opts.logger.child({ hostname });
      const before = this.loaded.get(hostname) ?? {};
      const next: TerminationContexts = { ...before };
      try {
        const [cert, key] = await Promise.all([readIfThere(terminate.certFile), readIfThere(terminate.keyFile)]);
        if (cert && key) {
          next.certificate = createSecureContext({ cert, key });
          const notAfter = new Date(new X509Certificate(cert).validTo);
          this.opts.metrics.tlsCertificateExpiry.set({ hostname }, notAfter.getTime() / 1000);
          if (before.certificate === undefined)
            log.info('TLS certificate loaded; terminating this route', { notAfter: notAfter.toISOString() });
        }
      } catch (err) {
        log.error('cannot load the TLS certificate; keeping the previous one', { err: describeError(err) });
      }
      try {
        const challenge = await readIfThere(terminate.challengeFile);
        if (challenge) next.challenge = createSecureContext({ cert: challenge, key: challenge });
        else delete next.challenge;
        if (challenge && !before.challenge) log.info('ACME TLS-ALPN-01 challenge loaded');
      } catch (err) {
        log.error('cannot load the ACME challenge certificate', { err: describeError(err) });
      }
      this.loaded.set(hostname, next);
    }
  }
}

async function readIfThere(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
