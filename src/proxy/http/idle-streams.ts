/**
 * Keep-alive tunnel streams waiting for their next request, per route and agent (LIFO, bounded).
 * An idle stream that the agent closes (the backend dropped its keep-alive connection) or that
 * sends unsolicited bytes leaves the pool and is destroyed.
 */
import type { OpenRequest } from '../../tunnel/open.ts';
import type { TunnelStream } from '../../tunnel/stream.ts';
import type { AgentLink } from '../agent-link.ts';
import type { Connector } from '../connector.ts';
import type { RouteKind } from '../route-table.ts';

/** Pools are per route name and agent. */
export function poolKey(hostname: string, link: AgentLink): string {
  return `${hostname} ${link.id}`;
}

/**
 * The OPEN of a stream that will be pooled (keep-alive HTTP/1.1, or an HTTP/2 session): it
 * serves many clients, so the client is in X-Forwarded-For, not in the OPEN.
 */
export function pooledOpen(hostname: string, port: number): OpenRequest {
  return { protocol: 'http', hostname, port, client: { address: '', port: 0 }, local: { address: '', port } };
}

/** A keep-alive stream to `link` for `hostname`: an idle one from the pool, else a new one. */
export async function takeOrOpen(
  idle: IdleStreams,
  connector: Connector,
  link: AgentLink,
  hostname: string,
  port: number,
  kind: RouteKind,
): Promise<{ stream: TunnelStream; reused: boolean }> {
  const pooled = idle.take(poolKey(hostname, link));
  if (pooled) return { stream: pooled, reused: true };
  return { stream: (await connector.open(pooledOpen(hostname, port), link, kind)).stream, reused: false };
}

interface IdleEntry {
  stream: TunnelStream;
  link: AgentLink;
  forget: () => void;
}

export class IdleStreams {
  private readonly byKey = new Map<string, IdleEntry[]>();
  private readonly maxPerKey: number;

  constructor(maxPerKey: number) {
    this.maxPerKey = maxPerKey;
  }

  take(key: string): TunnelStream | undefined {
    const list = this.byKey.get(key);
    while (list && list.length > 0) {
      const entry = list.pop() as IdleEntry;
      entry.forget();
      if (!entry.stream.destroyed && !entry.link.draining) return entry.stream;
      entry.stream.destroy();
    }
    return undefined;
  }

  put(key: string, link: AgentLink, stream: TunnelStream): void {
    const list = this.byKey.get(key) ?? [];
    if (list.length >= this.maxPerKey || link.draining || stream.destroyed) {
      stream.destroy();
      return;
    }
    const evict = (): void => {
      const current = this.byKey.get(key);
      const i = current?.indexOf(entry) ?? -1;
      if (i >= 0) current!.splice(i, 1);
      entry.forget();
      stream.destroy();
    };
    const entry: IdleEntry = {
      stream,
      link,
      forget: () => {
        stream.removeListener('data', evict);
        stream.removeListener('end', evict);
        stream.removeListener('close', evict);
      },
    };
    stream.on('data', evict);
    stream.on('end', evict);
    stream.on('close', evict);
    list.push(entry);
    this.byKey.set(key, list);
  }

  /** Destroys the idle streams of one agent (it drains or left). */
  dropAgent(link: AgentLink): void {
    for (const [key, list] of this.byKey) {
      for (const entry of list.filter((e) => e.link === link)) {
        entry.forget();
        entry.stream.destroy();
      }
      const kept = list.filter((e) => e.link !== link);
      if (kept.length > 0) this.byKey.set(key, kept);
      else this.byKey.delete(key);
    }
  }

  destroyAll(): void {
    for (const list of this.byKey.values()) {
      for (const entry of list) {
        entry.forget();
        entry.stream.destroy();
      }
    }
    this.byKey.clear();
  }
}
