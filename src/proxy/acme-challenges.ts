/**
 * The ACME HTTP-01 answers this replica holds (common/acme-challenge.ts): written only by the
 * controller over mutual TLS (tunnel-server.ts), read by the HTTP listener for
 * `GET /.well-known/acme-challenge/<token>` with the Host the answer was given for. Bounded in
 * count and in time: an order that is never cleaned up cannot fill the gateway.
 */
import type { Clock } from '../common/clock.ts';
import type { ChallengeAnswer } from '../common/acme-challenge.ts';
import { normalizeHostname } from '../pki/grants.ts';

/** Orders in flight at once over every Gateway's tenants: far more than one controller runs. */
export const MAX_ACME_CHALLENGES = 1024;
/** An answer outlives its order by little: ACME validates within seconds of being asked. */
export const ACME_CHALLENGE_TTL_MS = 15 * 60_000;

export class AcmeChallenges {
  private readonly clock: Clock;
  private readonly max: number;
  private readonly ttlMs: number;
  /** Insertion order is age order: the oldest is evicted first when full. */
  private readonly answers = new Map<string, ChallengeAnswer & { expiresAt: number }>();

  constructor(clock: Clock, max = MAX_ACME_CHALLENGES, ttlMs = ACME_CHALLENGE_TTL_MS) {
    this.clock = clock;
    this.max = max;
    this.ttlMs = ttlMs;
  }

  get size(): number {
    return this.answers.size;
  }

  /** Holds an answer (replacing one for the same token); throws on a hostname that is not one. */
  put(token: string, answer: ChallengeAnswer): void {
    const hostname = normalizeHostname(answer.hostname);
    this.answers.delete(token);
    this.sweep();
    while (this.answers.size >= this.max) this.answers.delete(this.answers.keys().next().value as string);
    this.answers.set(token, {
      hostname,
      keyAuthorization: answer.keyAuthorization,
      expiresAt: this.clock.now() + this.ttlMs,
    });
  }

  delete(token: string): boolean {
    return this.answers.delete(token);
  }

  /** The key authorization for this token when it was given for this hostname, else undefined. */
  answer(token: string, hostname: string): string | undefined {
    const held = this.answers.get(token);
    if (!held) return undefined;
    if (held.expiresAt <= this.clock.now()) {
      this.answers.delete(token);
      return undefined;
    }
    return held.hostname === hostname ? held.keyAuthorization : undefined;
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [token, held] of this.answers) if (held.expiresAt <= now) this.answers.delete(token);
  }
}
