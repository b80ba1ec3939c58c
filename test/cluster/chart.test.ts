/**
 * The Helm chart as files: `helm lint`, values rejected by values.schema.json with a clear
 * message, deploy/ equal to the chart's defaults, and every rendering of several value sets
 * accepted by the real API server (server-side dry run, our CRDs and the ServiceMonitor CRD
 * installed).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deployFiles } from '../../scripts/generated-files.ts';
import { CHART, HELM, SERVICEMONITOR_CRD, helm, helmOk } from './chart-helpers.ts';
import { installCrdsAndNamespace, kubectl, kubectlOk } from './helpers.ts';

const NS = 'webgw-chart-dry';

const valueSets: Record<string, Record<string, unknown>> = {
  defaults: {},
  'farmer with gateways': {
    controller: {
      replicas: 3,
      podDisruptionBudget: { enabled: false },
      nodeSelector: { 'node-role.kubernetes.io/control-plane': '' },
      tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
    },
    webhook: {
      failurePolicy: 'Fail',
      timeoutSeconds: 10,
      namespaceSelector: {
        matchExpressions: [{ key: 'webgw.io/injection', operator: 'In', values: ['enabled', 'yes'] }],
      },
    },
    gateways: [
      {
        name: 'eu1',
        spec: {
          domain: 'eu1.gw.example.net',
          placement: { nodeSelector: { 'webgw.io/farmer': 'true' } },
          listeners: { http: { port: 80 }, https: { port: 443 }, tcp: { portRange: { from: 20000, to: 20999 } } },
          allowedNamespaces: { selector: { matchLabels: { tenant: 'yes' } } },
        },
      },
      {
        name: 'us1',
        spec: {
          placement: { nodeSelector: { 'webgw.io/farmer': 'us' }, replicas: 2 },
          listeners: { http: { port: 8080 }, tunnel: { port: 7443 } },
        },
      },
    ],
  },
  'monitoring, pinned image, CRDs not managed': {
    image: { repository: 'registry.example.com/webgw', tag: '1.2.3', pullPolicy: 'Always' },
    imagePullSecrets: [{ name: 'regcred' }],
    crds: { manage: false },
    controller: {
      logLevel: 'debug',
      resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } },
    },
    metrics: {
      serviceMonitor: { enabled: true, interval: '15s', labels: { release: 'prom' } },
      grafanaDashboard: { enabled: true },
    },
  },
};

describe('Helm chart', () => {
  beforeAll(async () => {
    await installCrdsAndNamespace(NS);
    await kubectlOk(['apply', '--server-side', '-f', SERVICEMONITOR_CRD]);
    await kubectlOk([
      'wait',
      '--for=condition=Established',
      'crd/servicemonitors.monitoring.coreos.com',
      '--timeout=60s',
    ]);
  });

  it('passes helm lint with every value set', async () => {
    for (const values of Object.values(valueSets)) {
      const out = await helmOk(['lint', '--strict', CHART, '-f', '-'], JSON.stringify(values));
      expect(out).toContain('0 chart(s) failed');
    }
  });

  it.each([
    [
      'an unknown failure policy',
      { webhook: { failurePolicy: 'Sometimes' } },
      /webhook\/failurePolicy.*'Ignore', 'Fail'/,
    ],
    [
      'a Gateway without listeners',
      { gateways: [{ name: 'eu1', spec: { placement: {} } }] },
      /gateways\/0\/spec.*missing property 'listeners'/,
    ],
    [
      'a Gateway port out of range',
      { gateways: [{ name: 'eu1', spec: { placement: {}, listeners: { http: { port: 70000 } } } }] },
      /listeners\/http\/port.*maximum.*65,535/,
    ],
    [
      'a Gateway name that is not a DNS label',
      { gateways: [{ name: 'EU_1', spec: { placement: {}, listeners: {} } }] },
      /gateways\/0\/name/,
    ],
    ['an unknown top-level key', { replicas: 3 }, /additional properties 'replicas' not allowed/],
  ])('rejects %s with a clear message', async (_what, values, message) => {
    const r = await helm(['template', 't', CHART, '-f', '-'], JSON.stringify(values));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });

  it('deploy/ is the chart with its defaults (npm run generate)', () => {
    for (const [path, content] of deployFiles(HELM))
      expect(`${path}\n${readFileSync(path, 'utf8')}`).toBe(`${path}\n${content}`);
  });

  it.each(Object.keys(valueSets))('renders %s into objects the API server accepts', async (name) => {
    const rendered = await helmOk(
      ['template', 'webgw', CHART, '--namespace', NS, '--include-crds', '-f', '-'],
      JSON.stringify(valueSets[name]),
    );
    const r = await kubectl(['apply', '--dry-run=server', '--server-side', '--force-conflicts', '-f', '-'], rendered);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const kinds = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' ')[0]!.split('/')[0]);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'deployment.apps',
        'mutatingwebhookconfiguration.admissionregistration.k8s.io',
        'clusterrole.rbac.authorization.k8s.io',
      ]),
    );
  });

  it('the dry run is real: a Gateway the values schema lets through but the CRD rules forbid is refused', async () => {
    const values = {
      gateways: [
        { name: 'clash', spec: { placement: {}, listeners: { http: { port: 8080 }, https: { port: 8080 } } } },
      ],
    };
    const rendered = await helmOk(['template', 'webgw', CHART, '--namespace', NS, '-f', '-'], JSON.stringify(values));
    const r = await kubectl(['apply', '--dry-run=server', '--server-side', '--force-conflicts', '-f', '-'], rendered);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Gateway "clash" is invalid: .*http and https listeners need different ports/);
  });

  it('the manifests the README and NOTES.txt show are accepted by the API server', async () => {
    const heredocs = (text: string): string[] =>
      [...text.matchAll(/<<'YAML'\n([\s\S]*?)\n\s*YAML/g)].map((m) => {
        const lines = m[1]!.split('\n');
        const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
        return lines.map((l) => l.slice(indent)).join('\n');
      });
    const readme = heredocs(readFileSync(join(__dirname, '../../README.md'), 'utf8'));
    // NOTES.txt's manifests hold no template directives (helm template does not render NOTES).
    const notes = heredocs(readFileSync(join(CHART, 'templates/NOTES.txt'), 'utf8'));
    expect(readme.length).toBeGreaterThanOrEqual(2);
    expect(notes.length).toBe(2);
    await kubectl(['create', 'namespace', 'shop']);
    for (const manifest of [...readme, ...notes]) {
      const r = await kubectl(['apply', '--dry-run=server', '-f', '-'], manifest);
      expect(`${r.code} ${r.stderr}`).toBe('0 ');
    }
  });
});
