/**
 * The systems under test. Each forwards a list of backend ports to public ports on loopback:
 * direct (no tunnel: the physical limit here), WebGW (gateway + agent, the compiled CLI as the
 * image runs it: HTTP by Host through its HTTP listener, and TCP routes), OpenSSH `ssh -R`, and
 * the peer tunnels frp, chisel, rathole and bore (bench/build-peers.sh), with TLS where offered.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { IMAGE_NODE_OPTIONS } from '../../src/controller/image.ts';
import { freeLoopbackPort } from '../../src/common/net.ts';
import { writeKeyPair } from '../../src/pki/files.ts';
import { createCA, issueAgentCertificate, issueServerCertificate } from '../../src/pki/issue.ts';
import { startNginxTlsProxy } from './backends.ts';
import { spawnTool, stopChild, waitForPort } from './proc.ts';

export const repoRoot = join(import.meta.dirname, '..', '..');
export const peersBin = join(process.env.WEBGW_BENCH_CACHE ?? join(homedir(), '.cache', 'webgw', 'bench'), 'bin');
const DAY = { notAfter: new Date(Date.now() + 24 * 3600_000) };

export interface System {
  name: string;
  /** Public port for each backend port asked for, in order. */
  ports: number[];
  /** HTTP by Host header, when the system routes HTTP itself (WebGW's HTTP listener). */
  http?: { port: number; host: string };
  /**
   * HTTPS terminated by the system for backends[0], by SNI `host`: WebGW's gateway (through the
   * tunnel), and for direct nginx terminating TLS in front of the backend (the baseline).
   */
  https?: { port: number; host: string };
  /** The tunnel's processes (their trees are measured); empty for direct. */
  pids: number[];
  /** Encryption between the tunnel's ends, as configured here. */
  transport: string;
  stop(): Promise<void>;
}

export type SystemStarter = (dir: string, backends: number[]) => Promise<System>;

function stopAll(children: ChildProcess[]): () => Promise<void> {
  return async () => {
    for (const c of [...children].reverse()) await stopChild(c);
  };
}

async function freePorts(n: number): Promise<[number, ...number[]]> {
  const ports: number[] = [];
  while (ports.length < n) {
    const p = await freeLoopbackPort();
    if (!ports.includes(p)) ports.push(p);
  }
  return ports as [number, ...number[]];
}

/** `n` consecutive free ports (a WebGW gateway's TCP port range). */
async function freeConsecutivePorts(n: number): Promise<number[]> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const from = 20_000 + Math.floor(Math.random() * 10_000);
    const ports = Array.from({ length: n }, (_, i) => from + i);
    const free = await Promise.all(ports.map((p) => freeLoopbackPort(p).then((got) => got === p)));
    if (free.every(Boolean)) return ports;
  }
  throw new Error(`no ${n} consecutive free ports`);
}

/** A CA and a server certificate for 127.0.0.1/localhost, as PEM files in `dir`. */
async function serverTls(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ca = createCA('bench CA', DAY);
  await writeKeyPair(dir, 'ca', ca);
  await writeKeyPair(dir, 'server', issueServerCertificate(ca, ['127.0.0.1', 'localhost'], DAY));
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
}

export const startDirect: SystemStarter = async (dir, backends) => {
  mkdirSync(dir, { recursive: true });
  const tls = await serverTls(dir);
  const proxy = await startNginxTlsProxy(join(dir, 'nginx-tls'), backends[0]!, tls);
  return {
    name: 'direct',
    ports: backends,
    https: { port: proxy.port, host: 'localhost' },
    pids: [],
    transport: 'none (HTTPS: nginx terminates TLS)',
    stop: () => proxy.stop(),
  };
};

export const startWebgw: SystemStarter = async (dir, backends) => {
  mkdirSync(dir, { recursive: true });
  const ca = createCA('bench CA', DAY);
  await writeKeyPair(dir, 'ca', ca);
  await writeKeyPair(dir, 'gateway', issueServerCertificate(ca, ['127.0.0.1'], DAY));
  const [tunnelPort, httpPort, httpsPort] = (await freePorts(3)) as [number, number, number];
  // HTTPS terminated by the gateway for `localhost` (wrk sends the URL's host as SNI).
  const servedCa = createCA('bench public CA', DAY);
  await writeKeyPair(join(dir, 'certs'), 'localhost', issueServerCertificate(servedCa, ['localhost'], DAY));
  const tcpPorts = await freeConsecutivePorts(backends.length); // the gateway's TCP port range
  const tcpFrom = tcpPorts[0]!;
  await writeKeyPair(
    dir,
    'agent',
    issueAgentCertificate(
      ca,
      {
        http: ['bench.localhost'],
        https: ['localhost'],
        tls: [],
        tlsTerminated: [],
        tcp: tcpPorts,
        h2c: [],
        identity: 'bench',
      },
      DAY,
    ),
  );
  writeFileSync(
    join(dir, 'gateway.json'),
    JSON.stringify({
      tunnel: {
        address: '127.0.0.1',
        port: tunnelPort,
        caFile: 'ca.crt',
        certFile: 'gateway.crt',
        keyFile: 'gateway.key',
      },
      listeners: {
        http: { address: '127.0.0.1', port: httpPort },
        https: { address: '127.0.0.1', port: httpsPort, certificatesDir: 'certs' },
        tcp: { address: '127.0.0.1', portRange: { from: tcpFrom, to: tcpFrom + backends.length - 1 } },
      },
      limits: { maxStreamsPerAgent: 100_000 },
    }),
  );
  writeFileSync(
    join(dir, 'agent.json'),
    JSON.stringify({
      gateways: [
        {
          name: 'bench',
          endpoints: [`wss://127.0.0.1:${tunnelPort}`],
          caFile: 'ca.crt',
          certFile: 'agent.crt',
          keyFile: 'agent.key',
        },
      ],
      routes: [
        { protocol: 'http', hostname: 'bench.localhost', backend: `127.0.0.1:${backends[0]}` },
        { protocol: 'http', hostname: 'localhost', backend: `127.0.0.1:${backends[0]}` },
        ...backends.map((b, i) => ({ protocol: 'tcp', port: tcpPorts[i], backend: `127.0.0.1:${b}` })),
      ],
    }),
  );
  // The compiled CLI with the image's NODE_OPTIONS, as the image runs it (`npm run bench` builds it first).
  const env = {
    ...process.env,
    WEBGW_LOG_LEVEL: process.env.WEBGW_LOG_LEVEL ?? 'error',
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${IMAGE_NODE_OPTIONS}`.trim(),
  };
  const main = join(repoRoot, 'dist/cli/main.js');
  const gateway = spawnTool(process.execPath, [main, 'gateway', '--config', join(dir, 'gateway.json')], { env });
  await waitForPort(tunnelPort);
  const agent = spawnTool(process.execPath, [main, 'agent', '--config', join(dir, 'agent.json')], { env });
  const deadline = Date.now() + 20_000;
  for (;;) {
    // ready when a request goes through
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
  for (const p of tcpPorts) await waitForPort(p);
  return {
    name: 'webgw',
    ports: tcpPorts,
    http: { port: httpPort, host: 'bench.localhost' },
    https: { port: httpsPort, host: 'localhost' },
    pids: [gateway.pid!, agent.pid!],
    transport: 'TLS 1.3 (mTLS), WebSocket',
    stop: stopAll([gateway, agent]),
  };
};

export const startSshReverse: SystemStarter = async (dir, backends) => {
  mkdirSync(dir, { recursive: true });
  mkdirSync('/run/sshd', { recursive: true });
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  const userKey = join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', userKey]);
  execFileSync('cp', [`${userKey}.pub`, join(dir, 'authorized_keys')]);
  const [sshdPort, ...ports] = await freePorts(1 + backends.length);
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `ListenAddress 127.0.0.1:${sshdPort}`,
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'AllowTcpForwarding yes',
      'GatewayPorts no',
      'UsePAM no',
      'StrictModes no',
      `PidFile ${join(dir, 'sshd.pid')}`,
      'LogLevel ERROR',
      'MaxStartups 100',
    ].join('\n') + '\n',
  );
  const sshd = spawnTool('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')]);
  await waitForPort(sshdPort);
  const forwards = backends.flatMap((b, i) => ['-R', `127.0.0.1:${ports[i]}:127.0.0.1:${b}`]);
  const ssh = spawnTool('ssh', [
    '-N',
    '-i',
    userKey,
    '-p',
    String(sshdPort),
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'ExitOnForwardFailure=yes',
    '-o',
    'LogLevel=ERROR',
    ...forwards,
    'root@127.0.0.1',
  ]);
  for (const p of ports) await waitForPort(p);
  return {
    name: 'ssh -R',
    ports,
    pids: [sshd.pid!, ssh.pid!],
    transport: 'SSH (OpenSSH defaults)',
    stop: stopAll([ssh, sshd]),
  };
};

export const startFrp: SystemStarter = async (dir, backends) => {
  mkdirSync(dir, { recursive: true });
  const tls = await serverTls(dir);
  const [bindPort, ...ports] = await freePorts(1 + backends.length);
  writeFileSync(
    join(dir, 'frps.toml'),
    [
      'bindAddr = "127.0.0.1"',
      `bindPort = ${bindPort}`,
      'proxyBindAddr = "127.0.0.1"',
      'log.level = "error"',
      'transport.tls.force = true',
      `transport.tls.certFile = "${tls.cert}"`,
      `transport.tls.keyFile = "${tls.key}"`,
    ].join('\n') + '\n',
  );
  writeFileSync(
    join(dir, 'frpc.toml'),
    [
      'serverAddr = "127.0.0.1"',
      `serverPort = ${bindPort}`,
      'log.level = "error"',
      'transport.tls.enable = true',
      `transport.tls.trustedCaFile = "${tls.ca}"`,
      'transport.tls.serverName = "127.0.0.1"',
      ...backends.flatMap((b, i) => [
        '',
        '[[proxies]]',
        `name = "p${i}"`,
        'type = "tcp"',
        'localIP = "127.0.0.1"',
        `localPort = ${b}`,
        `remotePort = ${ports[i]}`,
      ]),
    ].join('\n') + '\n',
  );
  const frps = spawnTool(join(peersBin, 'frps'), ['-c', join(dir, 'frps.toml')]);
  await waitForPort(bindPort);
  const frpc = spawnTool(join(peersBin, 'frpc'), ['-c', join(dir, 'frpc.toml')]);
  for (const p of ports) await waitForPort(p);
  return {
    name: 'frp',
    ports,
    pids: [frps.pid!, frpc.pid!],
    transport: 'TLS (frp tls.force), yamux',
    stop: stopAll([frpc, frps]),
  };
};

export const startChisel: SystemStarter = async (dir, backends) => {
  mkdirSync(dir, { recursive: true });
  const tls = await serverTls(dir);
  const [serverPort, ...ports] = await freePorts(1 + backends.length);
  const server = spawnTool(join(peersBin, 'chisel'), [
    'server',
    '--host',
    '127.0.0.1',
    '--port',
    String(serverPort),
    '--reverse',
    '--tls-key',
    tls.key,
    '--tls-cert',
    tls.cert,
  ]);
  await waitForPort(serverPort);
  const client = spawnTool(join(peersBin, 'chisel'), [
    'client',
    '--tls-ca',
    tls.ca,
    `https://127.0.0.1:${serverPort}`,
    ...backends.map((b, i) => `R:127.0.0.1:${ports[i]}:127.0.0.1:${b}`),
  ]);
  for (const p of ports) await waitForPort(p);
  return {
    name: 'chisel',
    ports,
    pids: [server.pid!, client.pid!],
    transport: 'TLS, SSH over WebSocket',
    stop: stopAll([client, server]),
  };
};

export const startRathole: SystemStarter = async (dir, backends) => {
  mkdirSync(dir, { recursive: true });
  const tls = await serverTls(dir);
  const pfx = join(dir, 'identity.pfx');
  execFileSync('openssl', [
    'pkcs12',
    '-export',
    '-out',
    pfx,
    '-inkey',
    tls.key,
    '-in',
    tls.cert,
    '-passout',
    'pass:bench',
  ]);
  const [serverPort, ...ports] = await freePorts(1 + backends.length);
  const services = (side: 'server' | 'client'): string[] =>
    backends.flatMap((b, i) => [
      `[${side}.services.s${i}]`,
      'token = "bench"',
      side === 'server' ? `bind_addr = "127.0.0.1:${ports[i]}"` : `local_addr = "127.0.0.1:${b}"`,
      '',
    ]);
  writeFileSync(
    join(dir, 'server.toml'),
    [
      '[server]',
      `bind_addr = "127.0.0.1:${serverPort}"`,
      '[server.transport]',
      'type = "tls"',
      '[server.transport.tls]',
      `pkcs12 = "${pfx}"`,
      'pkcs12_password = "bench"',
      '',
      ...services('server'),
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'client.toml'),
    [
      '[client]',
      `remote_addr = "127.0.0.1:${serverPort}"`,
      '[client.transport]',
      'type = "tls"',
      '[client.transport.tls]',
      `trusted_root = "${tls.ca}"`,
      'hostname = "localhost"',
      '',
      ...services('client'),
    ].join('\n'),
  );
  const env = { ...process.env, RUST_LOG: 'error' };
  const server = spawnTool(join(peersBin, 'rathole'), ['--server', join(dir, 'server.toml')], { env });
  await waitForPort(serverPort);
  const client = spawnTool(join(peersBin, 'rathole'), ['--client', join(dir, 'client.toml')], { env });
  for (const p of ports) await waitForPort(p);
  return {
    name: 'rathole',
    ports,
    pids: [server.pid!, client.pid!],
    transport: 'TLS (native-tls)',
    stop: stopAll([client, server]),
  };
};

/** bore: no encryption (it offers none; `--secret` only authenticates), one client per port. */
export const startBore: SystemStarter = async (_dir, backends) => {
  const ports = await freePorts(backends.length);
  const server = spawnTool(join(peersBin, 'bore'), ['server', '--min-port', '1024', '--max-port', '65535']);
  await waitForPort(7835); // bore's fixed control port
  const clients = backends.map((b, i) =>
    spawnTool(join(peersBin, 'bore'), [
      'local',
      String(b),
      '--local-host',
      '127.0.0.1',
      '--to',
      '127.0.0.1',
      '--port',
      String(ports[i]),
    ]),
  );
  for (const p of ports) await waitForPort(p);
  return {
    name: 'bore',
    ports,
    pids: [server.pid!, ...clients.map((c) => c.pid!)],
    transport: 'none (bore has no TLS)',
    stop: stopAll([...clients, server]),
  };
};

export const allSystems: Record<string, SystemStarter> = {
  direct: startDirect,
  webgw: startWebgw,
  'ssh -R': startSshReverse,
  frp: startFrp,
  chisel: startChisel,
  rathole: startRathole,
  bore: startBore,
};
