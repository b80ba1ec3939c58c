/**
 * A real Kubernetes control plane on loopback for the cluster tests: etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler and kwok (fake nodes), built by test/cluster/build.sh.
 *
 * Every process is started through `setpriv --pdeathsig TERM`, so it dies with the process that
 * started it, also when a test run is interrupted or killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
// Below the ephemeral range: the API server binds its port again after a restart, and no
// client connection of a parallel test may have taken it meanwhile.
import { freeWildcardPort } from '../helpers/ports.ts';
import { join } from 'node:path';
import { createCA, issueCertificate, type KeyPairPem } from '../../src/pki/issue.ts';

const HOUR = 3600_000;

export { binDir, k8sVersion, repoRoot } from '../../scripts/tool-cache.ts';
import { binDir, repoRoot } from '../../scripts/tool-cache.ts';

export const components = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kwok',
  'helm',
] as const;

export function missingBinaries(): string[] {
  return components.filter((c) => !existsSync(join(binDir(), c)));
}

export interface PlaneState {
  dir: string;
  kubeconfig: string;
  apiserverUrl: string;
  ports: { etcd: number; etcdPeer: number; apiserver: number };
  pids: Record<string, number>;
}

interface Pki {
  ca: KeyPairPem;
  serving: KeyPairPem;
  admin: KeyPairPem;
  saPublic: string;
  saPrivate: string;
}

/** Addresses for real nodes (RFC 2544 benchmarking range only: nothing leaves the machine). */
export interface NodeNetwork {
  /** Where nodes reach the API server (a host address on the nodes' side). */
  apiAddress: string;
  podCidr: string;
  serviceCidr: string;
  firstServiceIp: string;
}

export const defaultNodeNetwork: NodeNetwork = {
  apiAddress: '198.18.254.1',
  podCidr: '198.18.0.0/17',
  serviceCidr: '198.19.0.0/20',
  firstServiceIp: '198.19.0.1',
};

export class ControlPlane {
  readonly dir: string;
  /** Processes this object started (their exit is observable) ... */
  private readonly children = new Map<string, ChildProcess>();
  /** ... and every component's pid, also those another process started (see load()). */
  private readonly pids = new Map<string, number>();
  private readonly detached: boolean;
  /** Real nodes in network namespaces reach the API server at this host address (test/nodes). */
  private readonly nodeNetwork: NodeNetwork | undefined;
  private ports: PlaneState['ports'] | undefined;
  private pki: Pki | undefined;

  /** `detached`: leave the processes running when this process exits (npm run cluster:up). */
  constructor(dir: string, options: { detached?: boolean; nodeNetwork?: NodeNetwork } = {}) {
    this.dir = dir;
    this.detached = options.detached ?? false;
    this.nodeNetwork = options.nodeNetwork;
  }

  /**
   * The plane another process started (Jest's global setup), from its state file: tests use
   * it to stop and restart the API server.
   */
  static load(dir: string): ControlPlane {
    const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as PlaneState;
    const plane = new ControlPlane(dir);
    plane.ports = state.ports;
    const file = (name: string): string => readFileSync(join(dir, name), 'utf8');
    plane.pki = {
      ca: { certPem: file('ca.crt'), keyPem: file('ca.key') },
      serving: { certPem: file('apiserver.crt'), keyPem: file('apiserver.key') },
      admin: { certPem: file('admin.crt'), keyPem: file('admin.key') },
      saPublic: file('sa.pub'),
      saPrivate: file('sa.key'),
    };
    for (const [name, pid] of Object.entries(state.pids)) plane.pids.set(name, pid);
    return plane;
  }

  private saveState(): void {
    writeFileSync(join(this.dir, 'state.json'), JSON.stringify(this.state(), null, 2));
  }

  get kubeconfig(): string {
    return join(this.dir, 'kubeconfig');
  }

  get apiserverUrl(): string {
    return `https://127.0.0.1:${this.ports?.apiserver}`;
  }

  get caPem(): string {
    return (this.pki as Pki).ca.certPem;
  }

  state(): PlaneState {
    return {
      dir: this.dir,
      kubeconfig: this.kubeconfig,
      apiserverUrl: this.apiserverUrl,
      ports: this.ports!,
      pids: Object.fromEntries(this.pids),
    };
  }

  async start(log: (line: string) => void = () => {}): Promise<void> {
    const started = Date.now();
    mkdirSync(this.dir, { recursive: true });
    this.ports = {
      etcd: await freeWildcardPort(),
      etcdPeer: await freeWildcardPort(),
      apiserver: await freeWildcardPort(),
    };
    this.pki = this.writePki();
    this.writeKubeconfig();
    this.saveState();
    this.startEtcd();
    await this.waitHttp(`http://127.0.0.1:${this.ports.etcd}/health`, 30_000, 'etcd');
    log(`[plane] etcd ready after ${Date.now() - started} ms`);
    await this.startApiserver();
    log(`[plane] kube-apiserver ready after ${Date.now() - started} ms`);
    this.startControllers();
    log(`[plane] controller-manager, scheduler and kwok started after ${Date.now() - started} ms`);
  }

  /** Stops kube-apiserver and starts it again on the same port and etcd data. */
  async restartApiserver(downForMs = 0): Promise<void> {
    await this.stopChild('kube-apiserver');
    if (downForMs > 0) await new Promise((r) => setTimeout(r, downForMs));
    await this.startApiserver();
  }

  async stopApiserver(): Promise<void> {
    await this.stopChild('kube-apiserver');
  }

  async startApiserver(): Promise<void> {
    const p = this.ports!;
    const f = (name: string): string => join(this.dir, name);
    this.spawnComponent('kube-apiserver', [
      `--etcd-servers=http://127.0.0.1:${p.etcd}`,
      ...(this.nodeNetwork
        ? // Reachable from the nodes' namespaces too; kubelets are called with the admin certificate.
          [
            '--bind-address=0.0.0.0',
            `--advertise-address=${this.nodeNetwork.apiAddress}`,
            `--kubelet-client-certificate=${f('admin.crt')}`,
            `--kubelet-client-key=${f('admin.key')}`,
            '--kubelet-preferred-address-types=InternalIP',
            '--enable-aggregator-routing=true',
          ]
        : ['--bind-address=127.0.0.1', '--advertise-address=127.0.0.1']),
      `--secure-port=${p.apiserver}`,
      `--tls-cert-file=${f('apiserver.crt')}`,
      `--tls-private-key-file=${f('apiserver.key')}`,
      `--client-ca-file=${f('ca.crt')}`,
      `--service-account-key-file=${f('sa.pub')}`,
      `--service-account-signing-key-file=${f('sa.key')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      '--authorization-mode=Node,RBAC',
      // Without real nodes Service IPs are only allocated, never routed to (no kube-proxy).
      `--service-cluster-ip-range=${this.nodeNetwork?.serviceCidr ?? '10.96.0.0/16'}`,
      '--allow-privileged=true',
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      '--v=1',
    ]);
    await this.waitReady(60_000);
  }

  async stop(): Promise<void> {
    for (const name of ['kwok', 'kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'etcd'])
      await this.stopChild(name);
  }

  private writePki(): Pki {
    const validity = { notAfter: new Date(Date.now() + 24 * HOUR) };
    const ca = createCA('webgw test cluster CA', validity);
    const serving = issueCertificate(
      ca,
      {
        commonName: 'kube-apiserver',
        usage: 'server',
        hosts: [
          '127.0.0.1',
          'localhost',
          'kubernetes',
          'kubernetes.default',
          'kubernetes.default.svc',
          'kubernetes.default.svc.cluster.local',
          '10.96.0.1',
          ...(this.nodeNetwork ? [this.nodeNetwork.apiAddress, this.nodeNetwork.firstServiceIp] : []),
        ],
      },
      validity,
    );
    const admin = issueCertificate(
      ca,
      { commonName: 'webgw-test-admin', organizations: ['system:masters'], usage: 'client' },
      validity,
    );
    const sa = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    const files: Record<string, string> = {
      'ca.crt': ca.certPem,
      'ca.key': ca.keyPem,
      'apiserver.crt': serving.certPem,
      'apiserver.key': serving.keyPem,
      'admin.crt': admin.certPem,
      'admin.key': admin.keyPem,
      'sa.pub': sa.publicKey,
      'sa.key': sa.privateKey,
    };
    for (const [name, content] of Object.entries(files)) writeFileSync(join(this.dir, name), content, { mode: 0o600 });
    return { ca, serving, admin, saPublic: sa.publicKey, saPrivate: sa.privateKey };
  }

  private writeKubeconfig(): void {
    const pki = this.pki!;
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    writeFileSync(
      this.kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: webgw-test',
        'clusters:',
        '- name: webgw-test',
        '  cluster:',
        `    server: ${this.apiserverUrl}`,
        `    certificate-authority-data: ${b64(pki.ca.certPem)}`,
        'users:',
        '- name: admin',
        '  user:',
        `    client-certificate-data: ${b64(pki.admin.certPem)}`,
        `    client-key-data: ${b64(pki.admin.keyPem)}`,
        'contexts:',
        '- name: webgw-test',
        '  context: {cluster: webgw-test, user: admin}',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
  }

  private startEtcd(): void {
    const p = this.ports!;
    this.spawnComponent('etcd', [
      '--name=default',
      `--data-dir=${join(this.dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${p.etcd}`,
      `--advertise-client-urls=http://127.0.0.1:${p.etcd}`,
      `--listen-peer-urls=http://127.0.0.1:${p.etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${p.etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${p.etcdPeer}`,
      '--log-level=warn',
      '--quota-backend-bytes=1073741824',
      '--unsafe-no-fsync',
    ]);
  }

  private startControllers(): void {
    const f = (name: string): string => join(this.dir, name);
    this.spawnComponent('kube-controller-manager', [
      `--kubeconfig=${this.kubeconfig}`,
      '--leader-elect=false',
      '--secure-port=0',
      `--service-account-private-key-file=${f('sa.key')}`,
      `--root-ca-file=${f('ca.crt')}`,
      '--use-service-account-credentials=true',
      ...(this.nodeNetwork
        ? // Real nodes get their pod ranges from node IPAM.
          [
            '--controllers=*,-cloud-node-lifecycle,-service-lb-controller,-route,-bootstrapsigner,-tokencleaner',
            '--allocate-node-cidrs=true',
            `--cluster-cidr=${this.nodeNetwork.podCidr}`,
            '--node-cidr-mask-size=24',
            `--service-cluster-ip-range=${this.nodeNetwork.serviceCidr}`,
          ]
        : // No cloud, no node IPAM, no kube-proxy: only the controllers a workload needs.
          [
            '--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route,-bootstrapsigner,-tokencleaner',
          ]),
      '--v=1',
    ]);
    this.spawnComponent('kube-scheduler', [
      `--kubeconfig=${this.kubeconfig}`,
      '--leader-elect=false',
      '--secure-port=0',
      '--v=1',
    ]);
    this.spawnComponent('kwok', [
      `--kubeconfig=${this.kubeconfig}`,
      `--config=${join(repoRoot(), 'test/cluster/kwok-stages.yaml')}`,
      // Only nodes created with this annotation are faked (the tests create them).
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      // Pod IPs come from loopback: nothing ever connects to them.
      '--cidr=127.64.0.0/16',
      '--node-ip=127.0.0.1',
      '--server-address=127.0.0.1:0',
    ]);
  }

  private spawnComponent(name: string, args: string[]): void {
    const logFile = openSync(join(this.dir, `${name}.log`), 'a');
    const binary = join(binDir(), name);
    const child = this.detached
      ? spawn(binary, args, { stdio: ['ignore', logFile, logFile], detached: true })
      : spawn('setpriv', ['--pdeathsig', 'TERM', '--', binary, ...args], { stdio: ['ignore', logFile, logFile] });
    closeSync(logFile);
    // Tracked by pid; a running component must not keep the starting process alive.
    child.unref();
    this.children.set(name, child);
    this.pids.set(name, child.pid!);
    this.saveState();
  }

  private async stopChild(name: string): Promise<void> {
    const pid = this.pids.get(name);
    this.children.delete(name);
    this.pids.delete(name);
    this.saveState();
    if (pid === undefined || !alive(pid)) return;
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (alive(pid)) {
      if (Date.now() > deadline) process.kill(pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private waitHttp(url: string, timeoutMs: number, what: string): Promise<void> {
    return this.poll(
      async () => {
        const res = await fetch(url).catch(() => undefined);
        return res?.ok === true;
      },
      timeoutMs,
      what,
    );
  }

  private waitReady(timeoutMs: number): Promise<void> {
    const pki = this.pki!;
    return this.poll(
      () =>
        new Promise<boolean>((resolve) => {
          const req = request(
            `${this.apiserverUrl}/readyz`,
            { ca: pki.ca.certPem, cert: pki.admin.certPem, key: pki.admin.keyPem, timeout: 2000 },
            (res) => {
              res.resume();
              resolve(res.statusCode === 200);
            },
          );
          req.on('error', () => resolve(false));
          req.on('timeout', () => req.destroy());
          req.end();
        }),
      timeoutMs,
      'kube-apiserver /readyz',
    );
  }

  private async poll(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      for (const [name, child] of this.children) {
        if (child.exitCode !== null)
          throw new Error(
            `${name} exited with ${child.exitCode}; see ${join(this.dir, `${name}.log`)}:\n${tail(join(this.dir, `${name}.log`))}`,
          );
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by its parent) is as good as gone.
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}
