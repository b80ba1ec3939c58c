/** Line charts of the soak's samples (SVG rendered to PNG with resvg, as the benchmark's bars). */
import { Resvg } from '@resvg/resvg-js';
import type { SoakSample } from './soak.ts';

interface Series {
  label: string;
  color: string;
  points: Array<[number, number]>;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function lineChart(title: string, unit: string, series: Series[]): string {
  const width = 760;
  const height = 320;
  const left = 60;
  const right = 170;
  const top = 40;
  const bottom = 40;
  const all = series.flatMap((s) => s.points);
  const tMax = Math.max(1, ...all.map((p) => p[0]));
  const yMax = Math.max(1e-9, ...all.map((p) => p[1])) * 1.1;
  const x = (t: number): number => left + ((width - left - right) * t) / tMax;
  const y = (v: number): number => height - bottom - ((height - top - bottom) * v) / yMax;
  const grid = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => {
      const v = yMax * f;
      return (
        `<line x1="${left}" x2="${width - right}" y1="${y(v)}" y2="${y(v)}" stroke="#dddddd"/>` +
        `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">${v.toFixed(v < 10 ? 1 : 0)}</text>`
      );
    })
    .join('');
  const lines = series
    .map((s, i) => {
      const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
      return (
        `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>` +
        `<rect x="${width - right + 12}" y="${top + i * 22}" width="14" height="4" fill="${s.color}"/>` +
        `<text x="${width - right + 32}" y="${top + i * 22 + 6}" font-size="12">${esc(s.label)}</text>`
      );
    })
    .join('');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/>` +
    `<text x="12" y="24" font-size="15" font-weight="bold">${esc(title)} (${esc(unit)})</text>${grid}${lines}` +
    `<text x="${(left + width - right) / 2}" y="${height - 8}" text-anchor="middle" font-size="12">seconds (${tMax.toFixed(0)})</text></svg>`
  );
}

const png = (svg: string): Buffer =>
  Buffer.from(new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng());

/** Memory (RSS, heap) and descriptors + event-loop delay, gateway and agent: two PNGs. */
export function soakCharts(samples: SoakSample[]): { memory: Buffer; fdsAndDelay: Buffer } {
  const pts = (f: (s: SoakSample) => number): Array<[number, number]> => samples.map((s) => [s.t, f(s)]);
  return {
    memory: png(
      lineChart('Soak: memory', 'MiB', [
        { label: 'gateway RSS', color: '#2b7bb9', points: pts((s) => s.gateway.rssMiB) },
        { label: 'gateway heap', color: '#8cc1e6', points: pts((s) => s.gateway.heapMiB) },
        { label: 'agent RSS', color: '#d08c3c', points: pts((s) => s.agent.rssMiB) },
        { label: 'agent heap', color: '#f0c48c', points: pts((s) => s.agent.heapMiB) },
      ]),
    ),
    fdsAndDelay: png(
      lineChart('Soak: open descriptors and longest event-loop delay', 'count / ms', [
        { label: 'gateway fds', color: '#2b7bb9', points: pts((s) => s.gateway.fds) },
        { label: 'agent fds', color: '#d08c3c', points: pts((s) => s.agent.fds) },
        { label: 'gateway delay ms', color: '#5a9e3a', points: pts((s) => s.gateway.loopDelayMaxMs) },
        { label: 'agent delay ms', color: '#b0413e', points: pts((s) => s.agent.loopDelayMaxMs) },
      ]),
    ),
  };
}
