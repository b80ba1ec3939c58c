/**
 * Every duration on the command line is a number with its unit (`500ms`, `15s`, `10m`, `24h`,
 * `90d`), so no flag carries its unit in its name and no reader has to guess one.
 */
import { WebgwError } from '../common/errors.ts';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** Milliseconds in `value` (e.g. `15s`), which must lie in [minMs, maxMs]; a usage error otherwise. */
export function parseDuration(flag: string, value: string, minMs: number, maxMs: number): number {
  const match = DURATION.exec(value.trim());
  const ms = match ? Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS] : NaN;
  if (!(ms >= minMs && ms <= maxMs))
    throw new WebgwError(
      'WEBGW_ERR_USAGE',
      `${flag} takes a duration from ${formatDuration(minMs)} to ${formatDuration(maxMs)} with its unit ` +
        `(ms, s, m, h or d, e.g. ${formatDuration(minMs)}), got ${JSON.stringify(value)}`,
    );
  return Math.round(ms);
}

/** The largest unit that states `ms` exactly: 86400000 → `1d`, 1500 → `1500ms`. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms >= UNIT_MS[unit] && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}
