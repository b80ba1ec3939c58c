/**
 * Dead-peer detection, as both ends configure it: a ping every intervalMs; a session whose peer
 * misses missedPongs pongs in a row is closed, so a black-holed link (no RST, no FIN) is found
 * within intervalMs × (missedPongs + 1) and its streams fail instead of hanging.
 */
import { z } from 'zod';
import { sessionDefaults } from './session.ts';

export const keepaliveSchema = z
  .strictObject({
    intervalMs: z.number().int().min(100).max(300_000).default(sessionDefaults.pingIntervalMs),
    missedPongs: z.number().int().min(1).max(20).default(sessionDefaults.maxMissedPongs),
  })
  .prefault({});

export type KeepaliveConfig = z.output<typeof keepaliveSchema>;

/** The session options the config stands for. */
export const keepaliveOptions = (k: KeepaliveConfig): { pingIntervalMs: number; maxMissedPongs: number } => ({
  pingIntervalMs: k.intervalMs,
  maxMissedPongs: k.missedPongs,
});
