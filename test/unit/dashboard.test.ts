/** The chart's Grafana dashboard asks only for metrics and labels the code exports. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '../..');

/** Metric name → label names, from every prom-client metric declared under src/. */
function exportedMetrics(): Map<string, string[]> {
  const metrics = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) {
        for (const m of readFileSync(path, 'utf8').matchAll(/name: '(webgw_[a-z_]+)'([^}]*?)registers/gs)) {
          const labelNames = /labelNames: \[([^\]]*)\]/.exec(m[2]!)?.[1] ?? '';
          metrics.set(
            m[1]!,
            [...labelNames.matchAll(/'([a-z_]+)'/g)].map((l) => l[1]!),
          );
        }
      }
    }
  };
  walk(join(root, 'src'));
  return metrics;
}

describe('Grafana dashboard (charts/webgw/dashboards/webgw.json)', () => {
  const dashboard = JSON.parse(readFileSync(join(root, 'charts/webgw/dashboards/webgw.json'), 'utf8')) as {
    panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
  };
  const metrics = exportedMetrics();
  // Labels Prometheus adds to every series, and the histogram bucket label.
  const scrapeLabels = ['instance', 'job', 'pod', 'namespace', 'le'];

  it('finds the exported metrics', () => {
    expect(metrics.get('webgw_controller_reconcile_total')).toEqual(['controller', 'result']);
    expect(metrics.size).toBeGreaterThan(10);
  });

  it.each(dashboard.panels.flatMap((p) => p.targets.map((t) => [p.title, t.expr] as const)))(
    '%s: %s',
    (_title, expr) => {
      const used = [...expr.matchAll(/\b(webgw_[a-z_]+?)(?:_bucket|_sum|_count)?\b/g)].map((m) => m[1]!);
      expect(used.length).toBeGreaterThan(0);
      for (const name of used) expect(metrics.has(name) ? name : `${name} (not exported)`).toBe(name);
      const labels = [...expr.matchAll(/by \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((l) => l.trim()));
      const allowed = new Set([...scrapeLabels, ...used.flatMap((n) => metrics.get(n) ?? [])]);
      for (const label of labels) expect(allowed.has(label) ? label : `${label} (no such label)`).toBe(label);
    },
  );
});
