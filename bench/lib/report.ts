/**
 * Benchmark results: one record per system, scenario and parameters (bench/results/latest.json),
 * a markdown report with every figure and its ratio to direct from the same run, and PNG bar
 * charts of the headline figures (SVG drawn here, rasterized by @resvg/resvg-js).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';

export interface BenchRecord {
  system: string;
  scenario: string;
  params: Record<string, string | number>;
  metrics: Record<string, number>;
  /** metric / the same metric of direct in the same run (same scenario and params). */
  ratioToDirect: Record<string, number>;
}

export interface RunInfo {
  date: string;
  machine: string;
  versions: Record<string, string>;
  durationSec: number;
  runs: number;
  transports: Record<string, string>;
}

const key = (r: Pick<BenchRecord, 'scenario' | 'params'>): string => `${r.scenario} ${JSON.stringify(r.params)}`;

export function addRatios(records: BenchRecord[]): void {
  const direct = new Map(records.filter((r) => r.system === 'direct').map((r) => [key(r), r]));
  for (const r of records) {
    const d = direct.get(key(r));
    if (!d) continue;
    for (const [m, v] of Object.entries(r.metrics)) {
      const base = d.metrics[m];
      if (base !== undefined && base !== 0) r.ratioToDirect[m] = v / base;
    }
  }
}

const fmt = (v: number | null | undefined, digits = 2): string =>
  v === undefined || v === null || Number.isNaN(v) ? '–' : Math.abs(v) >= 1000 ? v.toFixed(0) : v.toFixed(digits);

interface Column {
  metric: string;
  label: string;
  ratio?: boolean;
}

const tables: Array<{ scenario: string; title: string; params: string[]; columns: Column[] }> = [
  {
    scenario: 'http',
    title: 'HTTP keep-alive (wrk, nginx backend)',
    params: ['size', 'connections'],
    columns: [
      { metric: 'requestsPerSec', label: 'req/s', ratio: true },
      { metric: 'p50Ms', label: 'p50 ms' },
      { metric: 'p99Ms', label: 'p99 ms', ratio: true },
      { metric: 'errors', label: 'errors' },
    ],
  },
  {
    scenario: 'https',
    title:
      'HTTPS terminated at the edge (wrk, 1 KiB): direct = nginx terminating TLS in front of the backend; new connection = a TLS handshake + 1 request (Connection: close)',
    params: ['mode', 'connections'],
    columns: [
      { metric: 'requestsPerSec', label: 'req/s', ratio: true },
      { metric: 'requestsPerSecMin', label: 'min' },
      { metric: 'requestsPerSecMax', label: 'max' },
      { metric: 'p50Ms', label: 'p50 ms' },
      { metric: 'p99Ms', label: 'p99 ms', ratio: true },
      { metric: 'errors', label: 'errors' },
    ],
  },
  {
    scenario: 'h2',
    title:
      'HTTP/2 terminated at the edge (h2load, 1 KiB, ALPN h2, 10 concurrent streams per connection; the backend gets HTTP/1.1): direct = nginx terminating TLS and HTTP/2',
    params: ['connections', 'streams'],
    columns: [
      { metric: 'requestsPerSec', label: 'req/s', ratio: true },
      { metric: 'requestsPerSecMin', label: 'min' },
      { metric: 'requestsPerSecMax', label: 'max' },
      { metric: 'meanMs', label: 'mean ms', ratio: true },
      { metric: 'errors', label: 'errors' },
    ],
  },
  {
    scenario: 'latency',
    title: 'Fixed-rate latency (vegeta, 1 KiB)',
    params: ['rate'],
    columns: [
      { metric: 'p50Ms', label: 'p50 ms' },
      { metric: 'p99Ms', label: 'p99 ms', ratio: true },
      { metric: 'addedP99Ms', label: 'added p99 ms' },
      { metric: 'success', label: 'success' },
    ],
  },
  {
    scenario: 'throughput',
    title: 'Bulk throughput (iperf3)',
    params: ['streams', 'direction'],
    columns: [
      { metric: 'gbitPerSec', label: 'Gbit/s', ratio: true },
      { metric: 'cpuSecondsPerGB', label: 'tunnel CPU s/GB' },
    ],
  },
  {
    scenario: 'churn',
    title: 'Connection churn (wrk, Connection: close, 1 KiB)',
    params: ['connections'],
    columns: [
      { metric: 'requestsPerSec', label: 'conn/s', ratio: true },
      { metric: 'p99Ms', label: 'p99 ms' },
      { metric: 'errors', label: 'errors' },
    ],
  },
  {
    scenario: 'hol',
    title: 'Head-of-line blocking: 100 req/s probe while iperf3 fills the same tunnel',
    params: [],
    columns: [
      { metric: 'p50Ms', label: 'p50 ms' },
      { metric: 'p99Ms', label: 'p99 ms', ratio: true },
      { metric: 'bulkGbitPerSec', label: 'bulk Gbit/s' },
    ],
  },
  {
    scenario: 'memory',
    title: 'Memory of the tunnel processes (RSS)',
    params: ['streams'],
    columns: [
      { metric: 'rssMiB', label: 'RSS MiB' },
      { metric: 'perStreamKiB', label: 'KiB per stream' },
      { metric: 'opened', label: 'streams open' },
      { metric: 'alive', label: 'tunnel alive' },
    ],
  },
];

const PEERS = ['frp', 'chisel', 'rathole', 'bore'];

/** The issue's targets, checked against this run: WebGW's HTTP listener and its TCP route. */
function targets(records: BenchRecord[]): string[] {
  const find = (system: string, scenario: string, params: BenchRecord['params']): BenchRecord | undefined =>
    records.find(
      (r) =>
        r.system === system && r.scenario === scenario && Object.entries(params).every(([k, v]) => r.params[k] === v),
    );
  const rows: string[] = ['## Targets', '', '| target | WebGW | measured | met |', '|---|---|---|---|'];
  for (const webgw of ['webgw', 'webgw (tcp route)']) {
    for (const connections of [1, 64, 256]) {
      const rps = (system: string): number =>
        find(system, 'http', { size: '1k', connections })?.metrics.requestsPerSec ?? NaN;
      const own = rps(webgw);
      const best = Math.max(...PEERS.map(rps).filter((v) => !Number.isNaN(v)));
      const ssh = rps('ssh -R');
      rows.push(
        `| HTTP 1 KiB req/s at ${connections} connections: ahead of every peer, ≥ 2× ssh -R | ${webgw} | ${fmt(own)} vs best peer ${fmt(best)}, ${fmt(own / ssh)}× ssh -R | ${own > best && own >= 2 * ssh ? 'yes' : 'no'} |`,
      );
    }
    const added = find(webgw, 'latency', { rate: 1000 })?.metrics.addedP99Ms ?? NaN;
    rows.push(`| added p99 at 1,000 req/s ≤ 1 ms | ${webgw} | ${fmt(added)} ms | ${added <= 1 ? 'yes' : 'no'} |`);
  }
  for (const direction of ['upload', 'download']) {
    const own = find('webgw', 'throughput', { streams: 1, direction })?.metrics.gbitPerSec ?? NaN;
    const ssh = find('ssh -R', 'throughput', { streams: 1, direction })?.metrics.gbitPerSec ?? NaN;
    rows.push(
      `| single-stream throughput (${direction}) ≥ ssh -R | webgw | ${fmt(own)} vs ${fmt(ssh)} Gbit/s | ${own >= ssh ? 'yes' : 'no'} |`,
    );
  }
  const perStream = find('webgw', 'memory', { streams: 10000 })?.metrics.perStreamKiB ?? NaN;
  rows.push(
    `| RSS per idle stream < 16 KiB (10,000 streams) | webgw | ${fmt(perStream)} KiB | ${perStream < 16 ? 'yes' : 'no'} |`,
    '',
  );
  return rows;
}

/** An earlier run (its latest.json) to compare WebGW with: before and after a change. */
export interface EarlierRun {
  date: string;
  records: BenchRecord[];
}

const COMPARED: Array<{
  label: string;
  system: string;
  scenario: string;
  params: BenchRecord['params'];
  metric: string;
}> = [
  ...[64, 256].flatMap((connections) =>
    ['webgw', 'webgw (tcp route)'].map((system) => ({
      label: `HTTP 1 KiB req/s, ${connections} connections`,
      system,
      scenario: 'http',
      params: { size: '1k', connections },
      metric: 'requestsPerSec',
    })),
  ),
  {
    label: 'HTTP 1 MiB req/s, 64 connections',
    system: 'webgw',
    scenario: 'http',
    params: { size: '1m', connections: 64 },
    metric: 'requestsPerSec',
  },
  ...['webgw', 'webgw (tcp route)'].map((system) => ({
    label: 'added p99 ms at 1,000 req/s',
    system,
    scenario: 'latency',
    params: { rate: 1000 },
    metric: 'addedP99Ms',
  })),
  ...[1, 8].flatMap((streams) =>
    ['upload', 'download'].flatMap((direction) => [
      {
        label: `iperf3 ${streams} stream(s) ${direction}, Gbit/s`,
        system: 'webgw',
        scenario: 'throughput',
        params: { streams, direction },
        metric: 'gbitPerSec',
      },
      {
        label: `iperf3 ${streams} stream(s) ${direction}, CPU s/GB`,
        system: 'webgw',
        scenario: 'throughput',
        params: { streams, direction },
        metric: 'cpuSecondsPerGB',
      },
    ]),
  ),
  { label: 'RSS idle, MiB', system: 'webgw', scenario: 'memory', params: { streams: 0 }, metric: 'rssMiB' },
  {
    label: 'RSS per stream at 10,000, KiB',
    system: 'webgw',
    scenario: 'memory',
    params: { streams: 10000 },
    metric: 'perStreamKiB',
  },
];

/** WebGW's key figures in an earlier run and in this one, each also as ×direct of its own run. */
function comparison(records: BenchRecord[], earlier: EarlierRun): string[] {
  const find = (from: BenchRecord[], c: (typeof COMPARED)[number]): BenchRecord | undefined =>
    from.find(
      (r) =>
        r.system === c.system &&
        r.scenario === c.scenario &&
        Object.entries(c.params).every(([k, v]) => r.params[k] === v),
    );
  const cell = (r: BenchRecord | undefined, metric: string): string => {
    const v = r?.metrics[metric];
    const ratio = r?.ratioToDirect[metric];
    return v === undefined || v === null
      ? '–'
      : `${fmt(v)}${ratio !== undefined && ratio !== null && metric !== 'addedP99Ms' ? ` (${fmt(ratio)}×)` : ''}`;
  };
  const rows = [
    `## WebGW against the run of ${earlier.date}`,
    '',
    'Figures of the earlier run and of this one; in brackets ×direct of the same run, which is the fairer comparison on a noisy machine.',
    '',
    '| figure | system | before | after |',
    '|---|---|---|---|',
  ];
  for (const c of COMPARED)
    rows.push(
      `| ${c.label} | ${c.system} | ${cell(find(earlier.records, c), c.metric)} | ${cell(find(records, c), c.metric)} |`,
    );
  rows.push('');
  return rows;
}

export function markdown(records: BenchRecord[], info: RunInfo, earlier?: EarlierRun): string {
  const out: string[] = [
    '# Benchmarks: WebGW, the direct path and peer tunnels',
    '',
    `${info.date} on ${info.machine}. Each figure is the median of ${info.runs} runs of ${info.durationSec} s, on loopback, all systems in one run; ×direct is the ratio to the direct path measured in the same run. Generated by \`npm run bench\`.`,
    '',
    '| system | version | transport |',
    '|---|---|---|',
    ...Object.keys(info.transports).map((s) => `| ${s} | ${info.versions[s] ?? ''} | ${info.transports[s]} |`),
    '',
    ...targets(records),
    ...(earlier ? comparison(records, earlier) : []),
  ];
  for (const t of tables) {
    const rows = records.filter((r) => r.scenario === t.scenario);
    if (rows.length === 0) continue;
    out.push(`## ${t.title}`, '');
    const head = [...t.params, 'system', ...t.columns.flatMap((c) => (c.ratio ? [c.label, '×direct'] : [c.label]))];
    out.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
    for (const r of rows) {
      const cells = [
        ...t.params.map((p) => String(r.params[p])),
        r.system,
        ...t.columns.flatMap((c) =>
          c.ratio ? [fmt(r.metrics[c.metric]), fmt(r.ratioToDirect[c.metric])] : [fmt(r.metrics[c.metric])],
        ),
      ];
      out.push(`| ${cells.join(' | ')} |`);
    }
    out.push('');
  }
  return out.join('\n');
}

/** A horizontal bar chart as SVG. */
function barChart(title: string, unit: string, bars: Array<{ label: string; value: number }>): string {
  const width = 720;
  const rowH = 30;
  const left = 170;
  const top = 50;
  const height = top + bars.length * rowH + 20;
  const max = Math.max(...bars.map((b) => b.value), 1e-9);
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const rows = bars
    .map((b, i) => {
      const y = top + i * rowH;
      const w = Math.max(1, ((width - left - 110) * b.value) / max);
      const color = b.label.startsWith('webgw') ? '#2b7bb9' : b.label === 'direct' ? '#888888' : '#d08c3c';
      return (
        `<text x="${left - 8}" y="${y + 19}" text-anchor="end" font-size="14">${esc(b.label)}</text>` +
        `<rect x="${left}" y="${y + 5}" width="${w.toFixed(1)}" height="${rowH - 10}" fill="${color}"/>` +
        `<text x="${left + w + 6}" y="${y + 19}" font-size="13">${esc(fmt(b.value))}</text>`
      );
    })
    .join('');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/>` +
    `<text x="12" y="28" font-size="16" font-weight="bold">${esc(title)} (${esc(unit)})</text>${rows}</svg>`
  );
}

export const charts: Array<{
  file: string;
  title: string;
  unit: string;
  pick: (r: BenchRecord) => number | undefined;
}> = [
  {
    file: 'http-1k-64.png',
    title: 'HTTP 1 KiB, 64 connections',
    unit: 'requests/s',
    pick: (r) =>
      r.scenario === 'http' && r.params.size === '1k' && r.params.connections === 64
        ? r.metrics.requestsPerSec
        : undefined,
  },
  {
    file: 'http-1m-64.png',
    title: 'HTTP 1 MiB, 64 connections',
    unit: 'requests/s',
    pick: (r) =>
      r.scenario === 'http' && r.params.size === '1m' && r.params.connections === 64
        ? r.metrics.requestsPerSec
        : undefined,
  },
  {
    file: 'latency-1000.png',
    title: 'p99 latency at 1,000 requests/s',
    unit: 'ms',
    pick: (r) => (r.scenario === 'latency' && r.params.rate === 1000 ? r.metrics.p99Ms : undefined),
  },
  {
    file: 'throughput-1.png',
    title: 'iperf3, 1 stream, upload',
    unit: 'Gbit/s',
    pick: (r) =>
      r.scenario === 'throughput' && r.params.streams === 1 && r.params.direction === 'upload'
        ? r.metrics.gbitPerSec
        : undefined,
  },
  {
    file: 'memory-10000.png',
    title: 'RSS per open stream, 10,000 streams',
    unit: 'KiB',
    pick: (r) => (r.scenario === 'memory' && r.params.streams === 10000 ? r.metrics.perStreamKiB : undefined),
  },
];

export function writeCharts(records: BenchRecord[], dir: string): string[] {
  const written: string[] = [];
  for (const c of charts) {
    const bars = records.flatMap((r) => {
      const v = c.pick(r);
      return v === undefined || Number.isNaN(v) ? [] : [{ label: r.system, value: v }];
    });
    if (bars.length === 0) continue;
    const png = new Resvg(barChart(c.title, c.unit, bars), {
      font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
    })
      .render()
      .asPng();
    writeFileSync(join(dir, c.file), png);
    written.push(c.file);
  }
  return written;
}
