/**
 * The systems under test, each started on loopback: an nginx backend, WebGW (gateway + agent as
 * real CLI processes), and OpenSSH `ssh -R` against a private sshd.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { connect } from 'node:net';
import { freeLoopbackPort } from '../../src/common/net.ts';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { writeKeyPair } from '../../src/pki/files.ts';
import { createCA, issueAgentCertificate, issueServerCertificate } from '../../src/pki/issue.ts';

export const repoRoot = join(import.meta.dirname, '..', '..');
const HOUR = 3600_000;

export interface Service {
  name: string;
  /** Where clients connect. */
  port: number;
  host?: string;
  pids: number[];
  stop(): void;
}

async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect(port, '127.0.0.1');
      sock.once('connect', () => { sock.destroy(); resolve(true); });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function spawnLogged(cmd: string, args: string[], opts: { cwd?: string } = {}): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...opts });
  const lines: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => {
    lines.push(l);
    if (lines.length > 50) lines.shift();
  });
  child.on('exit', (code, signal) => {
    if (code && code !== 0) process.stderr.write(`${cmd} exited ${code ?? signal}:\n${lines.join('\n')}\n`);
  });
  return child;
}

/** nginx serving `/1k` (1 KiB) and `/1m` (1 MiB) from a temp dir. */
export async function startNginx(dir: string): Promise<Service> {
  const root = join(dir, 'www');
  mkdirSync(root, { recursive: true });
  // nginx workers run unprivileged: they must be able to traverse the temp folders.
  for (const d of [dirname(dir), dir, root]) chmodSync(d, 0o755);
  mkdirSync(join(dir, 'nginx-tmp'), { recursive: true });
  writeFileSync(join(root, '1k'), Buffer.alloc(1024, 'a'));
  writeFileSync(join(root, '1m'), Buffer.alloc(1024 * 1024, 'b'));
  const port = await freeLoopbackPort();
  const tmp = join(dir, 'nginx-tmp');
  writeFileSync(join(dir, 'nginx.conf'), `
worker_processes 1;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log stderr error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${tmp}; proxy_temp_path ${tmp}; fastcgi_temp_path ${tmp}; uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  sendfile on;
  server { listen 127.0.0.1:${port}; root ${root}; location / { default_type application/octet-stream; } }
}`);
  const child = spawnLogged('nginx', ['-c', join(dir, 'nginx.conf'), '-e', 'stderr']);
  await waitForPort(port);
  return { name: 'nginx', port, pids: [child.pid!], stop: () => child.kill('SIGTERM') };
}

/** WebGW gateway + agent (the CLI, as deployed), HTTP route `bench.localhost` to the backend. */
export async function startWebgw(dir: string, backendPort: number, tcpPort?: number): Promise<Service> {
  const ca = createCA('bench CA', { notAfter: new Date(Date.now() + 24 * HOUR) });
  await writeKeyPair(dir, 'ca', ca);
  await writeKeyPair(dir, 'gateway', issueServerCertificate(ca, ['127.0.0.1'], { notAfter: new Date(Date.now() + 24 * HOUR) }));
  await writeKeyPair(dir, 'agent', issueAgentCertificate(ca, { http: ['bench.localhost'], tls: [], tcp: tcpPort ? [tcpPort] : [], identity: 'bench' }, { notAfter: new Date(Date.now() + 24 * HOUR) }));
  const [tunnelPort, httpPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
  writeFileSync(join(dir, 'gateway.json'), JSON.stringify({
    tunnel: { address: '127.0.0.1', port: tunnelPort, caFile: 'ca.crt', certFile: 'gateway.crt', keyFile: 'gateway.key' },
    listeners: { http: { address: '127.0.0.1', port: httpPort }, ...(tcpPort ? { tcp: { address: '127.0.0.1', portRange: { from: tcpPort, to: tcpPort } } } : {}) },
    limits: { maxHeaderBytes: 16384 },
  }));
  writeFileSync(join(dir, 'agent.json'), JSON.stringify({
    gateways: [{ name: 'bench', endpoints: [`wss://127.0.0.1:${tunnelPort}`], caFile: 'ca.crt', certFile: 'agent.crt', keyFile: 'agent.key' }],
    routes: [
      { protocol: 'http', hostname: 'bench.localhost', backend: `127.0.0.1:${backendPort}` },
      ...(tcpPort ? [{ protocol: 'tcp', port: tcpPort, backend: `127.0.0.1:${backendPort}` }] : []),
    ],
  }));
  const env = { ...process.env, WEBGW_LOG_LEVEL: process.env.WEBGW_LOG_LEVEL ?? 'warn' };
  const main = join(repoRoot, 'src/cli/main.ts');
  const gateway = spawn(process.execPath, [main, 'gateway', '--config', join(dir, 'gateway.json')], { stdio: 'inherit', env });
  await waitForPort(tunnelPort);
  const agent = spawn(process.execPath, [main, 'agent', '--config', join(dir, 'agent.json')], { stdio: 'inherit', env });
  // Ready when a request goes through.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const status = await new Promise<number>((resolve) => {
      httpGet({ host: '127.0.0.1', port: httpPort, path: '/1k', headers: { host: 'bench.localhost' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', () => resolve(0));
    });
    if (status === 200) break;
    if (Date.now() > deadline) throw new Error('WebGW did not start serving');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name: 'webgw', port: httpPort, host: 'bench.localhost', pids: [gateway.pid!, agent.pid!],
    stop: () => {
      agent.kill('SIGTERM');
      gateway.kill('SIGTERM');
    },
  };
}

/** `ssh -R` through a private sshd on loopback (Debian's OpenSSH, default ciphers). */
export async function startSshReverse(dir: string, backendPort: number): Promise<Service> {
  mkdirSync('/run/sshd', { recursive: true });
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  const userKey = join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', userKey]);
  execFileSync('cp', [`${userKey}.pub`, join(dir, 'authorized_keys')]);
  const sshdPort = await freeLoopbackPort();
  const publicPort = await freeLoopbackPort();
  writeFileSync(join(dir, 'sshd_config'), [
    `ListenAddress 127.0.0.1:${sshdPort}`, `HostKey ${hostKey}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'AllowTcpForwarding yes', 'GatewayPorts no',
    'UsePAM no', 'StrictModes no', `PidFile ${join(dir, 'sshd.pid')}`, 'LogLevel ERROR',
  ].join('\n') + '\n');
  const sshd = spawnLogged('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')]);
  await waitForPort(sshdPort);
  const ssh = spawnLogged('ssh', ['-N', '-i', userKey, '-p', String(sshdPort), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'ExitOnForwardFailure=yes', '-o', 'LogLevel=ERROR', '-R', `127.0.0.1:${publicPort}:127.0.0.1:${backendPort}`, `root@127.0.0.1`]);
  await waitForPort(publicPort);
  return {
    name: 'ssh -R', port: publicPort, pids: [sshd.pid!, ssh.pid!],
    stop: () => {
      ssh.kill('SIGTERM');
      sshd.kill('SIGTERM');
    },
  };
}
