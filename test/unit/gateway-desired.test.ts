import { parse } from 'yaml';
import { parseAuthorizedAgents } from '../../src/pki/authorized-agents.ts';
import { gatewayObjectNames, type GatewayInputs } from '../../src/controller/gateway/desired.ts';
import { desiredGateway } from '../../src/controller/gateway/status.ts';
import type { Gateway } from '../../src/crds/types.ts';
import { gatewayConfigSchema } from '../../src/proxy/config.ts';

const now = new Date('2026-11-26T12:00:00Z');
const credentials = { caPem: 'CA-CERT', certPem: 'SERVER-CERT', keyPem: 'SERVER-KEY' };

function gateway(spec: Partial<Gateway['spec']> = {}, name = 'farmer-eu-1'): Gateway {
  return {
    apiVersion: 'webgw.io/v1alpha1',
    kind: 'Gateway',
    metadata: { name, uid: 'uid-1', generation: 3 },
    spec: {
      placement: {
        nodeSelector: { 'webgw.io/network-farmer': 'true' },
        tolerations: [{ key: 'webgw.io/network-farmer', operator: 'Exists', effect: 'NoSchedule' }],
      },
      listeners: {
        http: { port: 80 },
        https: { port: 443 },
        tcp: { portRange: { from: 20000, to: 20999 } },
        tunnel: { port: 8443 },
      },
      ...spec,
    },
  };
}

function inputs(over: Partial<GatewayInputs> = {}): GatewayInputs {
  return {
    gateway: gateway(),
    namespace: 'webgw-system',
    image: 'webgw:test',
    credentials,
    pods: [],
    nodes: [],
    desiredReplicas: 0,
    admittedAgents: [],
    now,
    ...over,
  };
}

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const find = (objects: Obj[], kind: string): Obj => objects.find((o) => o.kind === kind)!;

describe('Gateway desired()', () => {
  it.each([
    ['no replicas: a DaemonSet on every matching node', undefined, 'DaemonSet', false],
    ['replicas: a Deployment spread by anti-affinity', 2, 'Deployment', true],
  ])('%s', (_name, replicas, kind, antiAffinity) => {
    const d = desiredGateway(
      inputs({ gateway: gateway({ placement: { ...gateway().spec.placement, ...(replicas ? { replicas } : {}) } }) }),
    );
    const workload = find(d.objects, kind);
    expect(workload.metadata.name).toBe('webgw-gw-farmer-eu-1');
    expect(workload.metadata.ownerReferences).toEqual([
      {
        apiVersion: 'webgw.io/v1alpha1',
        kind: 'Gateway',
        name: 'farmer-eu-1',
        uid: 'uid-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    if (replicas) expect(workload.spec.replicas).toBe(replicas);
    expect(Boolean(workload.spec.template.spec.affinity)).toBe(antiAffinity);
  });

  it('runs proxy pods with host networking, no service account token and a locked-down container', () => {
    const pod = find(desiredGateway(inputs()).objects, 'DaemonSet').spec.template.spec;
    expect(pod).toMatchObject({
      hostNetwork: true,
      automountServiceAccountToken: false,
      nodeSelector: { 'webgw.io/network-farmer': 'true' },
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
    });
    expect(pod.containers[0].securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] },
    });
    expect(pod.containers[0].command).toEqual(['/usr/local/bin/node-net-bind', '/app/dist/cli/main.js']);
    // Readiness of this process, not of whichever process shares the port (sharePorts).
    expect(pod.containers[0].readinessProbe.exec).toEqual({ command: ['/bin/cat', '/etc/webgw/run/ready'] });
    expect(pod.containers[0].livenessProbe.httpGet).toEqual({ host: '127.0.0.1', port: 9901, path: '/healthz' });
    expect(pod.volumes.map((v: Obj) => v.secret?.secretName ?? v.configMap?.name ?? v.name)).toEqual([
      'webgw-gw-farmer-eu-1-config',
      'webgw-gw-farmer-eu-1-tunnel',
      'state',
      'webgw-gw-farmer-eu-1-certs',
    ]);
  });

  it('renders a config the gateway program accepts', () => {
    const cm = find(desiredGateway(inputs()).objects, 'ConfigMap');
    const config = gatewayConfigSchema.parse(parse(cm.data['gateway.yaml']));
    expect(config.listeners).toEqual({
      http: { address: '0.0.0.0', port: 80 },
      https: { address: '0.0.0.0', port: 443, certificatesDir: 'certs' },
      tcp: { address: '0.0.0.0', portRange: { from: 20000, to: 20999 } },
    });
    expect(config.tunnel).toMatchObject({ port: 8443, caFile: 'tls/ca.crt' });
    expect(config.admin).toEqual({ address: '127.0.0.1', port: 9901 });
    expect(config.tunnel.authorizedAgentsFile).toBe('admitted-agents.txt');
    expect(cm.data['admitted-agents.txt']).toMatch(/^# Serial numbers/);
    expect(parseAuthorizedAgents(cm.data['admitted-agents.txt'], 'cm').size).toBe(0);
    const listed = find(desiredGateway(inputs({ admittedAgents: ['0ab1', '0AB1', 'ff'] })).objects, 'ConfigMap');
    expect([...parseAuthorizedAgents(listed.data['admitted-agents.txt'], 'cm')]).toEqual(['0AB1', 'FF']);
  });

  it('puts no CA key on the edge', () => {
    const secret = find(desiredGateway(inputs()).objects, 'Secret');
    expect(secret.metadata.name).toBe(gatewayObjectNames('farmer-eu-1').tunnelSecret);
    expect(Object.keys(secret.stringData).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
    expect(JSON.stringify(secret)).not.toContain('CA-KEY');
  });

  it.each([
    [
      'a listener change',
      { gateway: gateway({ listeners: { ...gateway().spec.listeners, http: { port: 8080 } } }) },
      true,
    ],
    ['a renewed certificate', { credentials: { ...credentials, certPem: 'RENEWED' } }, true],
    ['observed pods only', { pods: [{ name: 'p', nodeName: 'n', ready: true }] }, false],
    [
      'a new tenant credential (reloaded, not rolled)',
      { authorizedAgents: [{ identity: 'a/b/c', serial: 'AB' }] },
      false,
    ],
  ])('rolls the pods on %s: %s', (_name, change, rolls) => {
    const hashOf = (i: GatewayInputs): string =>
      find(desiredGateway(i).objects, 'DaemonSet').spec.template.metadata.annotations['webgw.io/config-hash'];
    expect(hashOf(inputs(change as Partial<GatewayInputs>)) !== hashOf(inputs())).toBe(rolls);
  });

  const nodes = [
    {
      name: 'farmer-1',
      addresses: [
        { type: 'InternalIP', address: '10.0.0.5' },
        { type: 'ExternalIP', address: '203.0.113.10' },
      ],
    },
    { name: 'farmer-2', addresses: [{ type: 'InternalIP', address: '198.51.100.7' }] },
  ];
  it.each([
    ['nothing scheduled', [], 0, 'False', 'NoMatchingNodes', []],
    [
      'one of two ready',
      [
        { name: 'a', nodeName: 'farmer-1', ready: true },
        { name: 'b', nodeName: 'farmer-2', ready: false },
      ],
      2,
      'False',
      'PodsNotReady',
      ['203.0.113.10'],
    ],
    [
      'all ready',
      [
        { name: 'a', nodeName: 'farmer-1', ready: true },
        { name: 'b', nodeName: 'farmer-2', ready: true },
      ],
      2,
      'True',
      'PodsReady',
      ['198.51.100.7', '203.0.113.10'],
    ],
  ])('status when %s', (_name, pods, desiredReplicas, ready, reason, addresses) => {
    const { status } = desiredGateway(inputs({ pods, nodes, desiredReplicas }));
    expect(status.observedGeneration).toBe(3);
    expect(status.addresses).toEqual(addresses.map((value) => ({ type: 'IPAddress', value })));
    expect(status.tunnelEndpoints).toEqual(addresses.map((a) => `wss://${a}:8443`));
    expect(status.replicas).toEqual({ desired: desiredReplicas, ready: pods.filter((p) => p.ready).length });
    expect(status.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: ready, reason });
    expect(status.conditions!.find((c) => c.type === 'Accepted')).toMatchObject({ status: 'True' });
  });

  it('reports Programmed=False with the apply error', () => {
    const { status } = desiredGateway(inputs({ applyError: 'forbidden' }));
    expect(status.conditions!.find((c) => c.type === 'Programmed')).toMatchObject({
      status: 'False',
      reason: 'ApplyFailed',
      message: 'forbidden',
    });
  });

  it('does not accept a name too long for the workload, and renders nothing', () => {
    const d = desiredGateway(inputs({ gateway: gateway({}, 'x'.repeat(60)) }));
    expect(d.objects).toEqual([]);
    expect(d.status.conditions!.find((c) => c.type === 'Accepted')).toMatchObject({
      status: 'False',
      reason: 'Invalid',
    });
  });

  it('is stable: the same inputs give the same objects and status', () => {
    expect(desiredGateway(inputs())).toEqual(desiredGateway(inputs()));
  });
});
