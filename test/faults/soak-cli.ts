/**
 * `npm run soak [-- --minutes 30 --label NAME]`: the soak (soak.ts) as a script; writes
 * bench/results/soak-<label>.json and two PNG plots of the samples beside it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../../scripts/tool-cache.ts';
import { runSoak } from './soak.ts';
import { soakCharts } from './soak-chart.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    label: { type: 'string', default: 'current' },
    'sample-seconds': { type: 'string', default: '10' },
    'restart-seconds': { type: 'string', default: '60' },
  },
});
const seconds = Math.round(Number(values.minutes) * 60);
const result = await runSoak({
  seconds,
  sampleEveryS: Number(values['sample-seconds']),
  warmupS: Math.min(120, seconds / 4),
  restartAgentEveryS: Number(values['restart-seconds']),
  progress: (line) => process.stdout.write(`[soak] ${line}\n`),
});
const dir = join(repoRoot(), 'bench', 'results');
mkdirSync(dir, { recursive: true });
const base = `soak-${values.label}`;
writeFileSync(join(dir, `${base}.json`), `${JSON.stringify({ date: new Date().toISOString(), ...result }, null, 2)}\n`);
const charts = soakCharts(result.samples);
writeFileSync(join(dir, `${base}-memory.png`), charts.memory);
writeFileSync(join(dir, `${base}-fds-delay.png`), charts.fdsAndDelay);
process.stdout.write(
  `[soak] ${seconds} s, ${result.agentRestarts} agent restarts; load ${JSON.stringify(result.load)}\n` +
    `[soak] slopes per hour after warm-up: ${JSON.stringify(result.slopes)}\n` +
    `[soak] unexpected: ${result.unexpected.length ? result.unexpected.join('\n  ') : 'none'}\n` +
    `[soak] wrote bench/results/${base}.json, ${base}-memory.png, ${base}-fds-delay.png\n`,
);
process.exitCode = result.unexpected.length === 0 && Object.values(result.load).every((c) => c.failed === 0) ? 0 : 1;
