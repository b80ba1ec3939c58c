/**
 * Proof of control for hostnames outside a Gateway's domain (`hostnamePolicy.external:
 * Verified`): a tenant proves it controls `shop.example` by publishing a TXT record
 * `_webgw-challenge.shop.example` whose value is `webgw-verification=<token>`, the token being
 * derived from its namespace's uid. Until the record is seen, nobody may claim the name there,
 * however early they ask (issue 12: without proof, the first claimant of a name wins it).
 *
 * Lookups happen in the reconciler's gather step; planClaims only reads the verdicts (pure).
 * Verdicts are cached: positive ones for RECHECK_MS, negative ones for RETRY_MS.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../../common/clock.ts';

export const CHALLENGE_PREFIX = '_webgw-challenge';
export const RECHECK_MS = 10 * 60_000;
export const RETRY_MS = 60_000;
/** At most this many verdicts are kept (least recently checked dropped first). */
const MAX_ENTRIES = 50_000;

/** The value a namespace publishes to prove control of a name. */
export function verificationValue(namespaceUid: string): string {
  return `webgw-verification=${createHash('sha256').update(`webgw:${namespaceUid}`).digest('hex').slice(0, 32)}`;
}

/** The TXT record name for `hostname` (a wildcard is proven on its base name). */
export function challengeRecord(hostname: string): string {
  return `${CHALLENGE_PREFIX}.${hostname.startsWith('*.') ? hostname.slice(2) : hostname}`;
}

export type ResolveTxt = (name: string) => Promise<string[][]>;

interface Verdict {
  ok: boolean;
  checkedAt: number;
}

export class HostnameVerifier {
  private readonly verdicts = new Map<string, Verdict>();
  private readonly resolveTxt: ResolveTxt;
  private readonly clock: Clock;

  constructor(resolveTxt: ResolveTxt, clock: Clock) {
    this.resolveTxt = resolveTxt;
    this.clock = clock;
  }

  /** The cached verdict: false until a lookup proved it. */
  verified(hostname: string, namespaceUid: string): boolean {
    return this.verdicts.get(key(hostname, namespaceUid))?.ok === true;
  }

  /**
   * Looks up the pairs whose verdict is missing or stale. Returns true when a verdict changed
   * (the plans of every service may then change).
   */
  async refresh(pairs: ReadonlyArray<{ hostname: string; namespaceUid: string }>): Promise<boolean> {
    const now = this.clock.now();
    const due = pairs.filter((p) => {
      const v = this.verdicts.get(key(p.hostname, p.namespaceUid));
      return !v || now - v.checkedAt >= (v.ok ? RECHECK_MS : RETRY_MS);
    });
    const results = await Promise.all(due.map(async (p) => ({ p, ok: await this.lookup(p.hostname, p.namespaceUid) })));
    let changed = false;
    for (const { p, ok } of results) {
      const k = key(p.hostname, p.namespaceUid);
      if (this.verdicts.get(k)?.ok !== ok) changed = true;
      this.verdicts.delete(k); // re-inserted last: the Map's order is the eviction order
      this.verdicts.set(k, { ok, checkedAt: now });
    }
    while (this.verdicts.size > MAX_ENTRIES) this.verdicts.delete(this.verdicts.keys().next().value as string);
    return changed;
  }

  private async lookup(hostname: string, namespaceUid: string): Promise<boolean> {
    const want = verificationValue(namespaceUid);
    try {
      const records = await this.resolveTxt(challengeRecord(hostname));
      return records.some((chunks) => chunks.join('') === want);
    } catch {
      return false; // NXDOMAIN, no answer, timeout: not proven (yet)
    }
  }
}

function key(hostname: string, namespaceUid: string): string {
  return `${hostname} ${namespaceUid}`;
}
