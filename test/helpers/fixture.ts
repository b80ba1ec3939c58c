/**
 * Builds real gateways and agents on loopback (port 0) for the e2e tests: a CA per gateway, a
 * server certificate, agent certificates with chosen grants, configs validated by the same
 * schemas as the CLI's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../src/agent/agent.ts';
import { agentConfigSchema } from '../../src/agent/config.ts';
import { parseConfig } from '../../src/common/config-file.ts';
import { createLogger, type Logger } from '../../src/common/log.ts';
import { writeKeyPair } from '../../src/pki/files.ts';
import type { GrantSet } from '../../src/pki/grants.ts';
import {
  createCA,
  issueAgentCertificate,
  issueServerCertificate,
  type KeyPairPem,
  type Validity,
} from '../../src/pki/issue.ts';
import { gatewayConfigSchema } from '../../src/proxy/config.ts';
import { Gateway, type GatewayAddresses } from '../../src/proxy/gateway.ts';

const HOUR = 3600_000;
export const hours = (h: number): Validity => ({ notAfter: new Date(Date.now() + h * HOUR) });

export class LogCapture {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly logger: Logger = createLogger(
    {},
    { level: 'debug', sink: (line) => this.lines.push(JSON.parse(line) as Record<string, unknown>) },
  );

  find(msg: string | RegExp): Record<string, unknown> | undefined {
    return this.lines.find((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg))));
  }
}

export class TempDir {
  readonly path = mkdtempSync(join(tmpdir(), 'webgw-test-'));
  file(name: string): string {
    return join(this.path, name);
  }
  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

export interface GatewayFixture {
  gateway: Gateway;
  addresses: GatewayAddresses;
  ca: KeyPairPem;
  dir: TempDir;
  log: LogCapture;
  tunnelUrl: string;
  httpPort: number;
  tlsPort: number;
  /** Issues an agent certificate from this gateway's CA and writes it to `name`.crt/key. */
  issueAgent(name: string, grants: Partial<GrantSet>, validity?: Validity): Promise<AgentCredentialFiles>;
  restart(): Promise<void>;
  /** With sharePorts: starts a second gateway on the same ports, then drains the first (a rollout). */
  handover(): Promise<void>;
  stop(): Promise<void>;
}

export interface AgentCredentialFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface GatewayFixtureOptions {
  tcpRange?: { from: number; to: number };
  limits?: Record<string, number>;
  /** Keep the same ports across restart(). */
  ports?: { tunnel: number; http: number; tls: number };
  ca?: KeyPairPem;
  dir?: TempDir;
  /** Admit only the agents listed in this file (see src/proxy/authorized-agents.ts). */
  authorizedAgentsFile?: string;
  /** Bind with SO_REUSEPORT (config sharePorts), for handover(). */
  sharePorts?: boolean;
  /** Certificates the TLS listener terminates with (config listeners.https.certificatesDir). */
  certificatesDir?: string;
  /** Where the tunnel listens (default 127.0.0.1; the server certificate names it). */
  tunnelAddress?: string;
  /** Pings to the agents (config tunnel.keepalive). */
  keepalive?: { intervalMs: number; missedPongs: number };
}

export async function startGateway(options: GatewayFixtureOptions = {}): Promise<GatewayFixture> {
  const dir = options.dir ?? new TempDir();
  const ca = options.ca ?? createCA('test gateway CA', hours(24));
  await writeKeyPair(dir.path, 'ca', ca);
  const tunnelAddress = options.tunnelAddress ?? '127.0.0.1';
  await writeKeyPair(
    dir.path,
    'gateway',
    issueServerCertificate(ca, [...new Set([tunnelAddress, '127.0.0.1', 'localhost'])], hours(24)),
  );
  const log = new LogCapture();
  const build = (ports: { tunnel: number; http: number; tls: number }): Gateway =>
    new Gateway(
      parseConfig(
        {
          name: 'test',
          tunnel: {
            address: tunnelAddress,
            port: ports.tunnel,
            caFile: dir.file('ca.crt'),
            certFile: dir.file('gateway.crt'),
            keyFile: dir.file('gateway.key'),
            ...(options.authorizedAgentsFile ? { authorizedAgentsFile: options.authorizedAgentsFile } : {}),
            ...(options.keepalive ? { keepalive: options.keepalive } : {}),
          },
          listeners: {
            http: { address: '127.0.0.1', port: ports.http },
            https: {
              address: '127.0.0.1',
              port: ports.tls,
              ...(options.certificatesDir ? { certificatesDir: options.certificatesDir } : {}),
            },
            ...(options.tcpRange ? { tcp: { address: '127.0.0.1', portRange: options.tcpRange } } : {}),
          },
          admin: { address: '127.0.0.1', port: 0 },
          sharePorts: options.sharePorts ?? false,
          limits: options.limits ?? {},
        },
        gatewayConfigSchema,
        'test gateway',
      ),
      { logger: log.logger, credentialPollMs: 200 },
    );
  let gateway = build(options.ports ?? { tunnel: 0, http: 0, tls: 0 });
  let addresses = await gateway.start();
  const fixture: GatewayFixture = {
    get gateway() {
      return gateway;
    },
    get addresses() {
      return addresses;
    },
    ca,
    dir,
    log,
    get tunnelUrl() {
      return `wss://${tunnelAddress}:${addresses.tunnel.port}`;
    },
    get httpPort() {
      return addresses.http!.port;
    },
    get tlsPort() {
      return addresses.tls!.port;
    },
    async issueAgent(name, grants, validity = hours(1)) {
      const pair = issueAgentCertificate(
        ca,
        { http: [], https: [], tls: [], tlsTerminated: [], tcp: [], h2c: [], identity: `test/${name}`, ...grants },
        validity,
      );
      const { certFile, keyFile } = await writeKeyPair(dir.path, name, pair);
      return { caFile: dir.file('ca.crt'), certFile, keyFile };
    },
    async restart() {
      const ports = { tunnel: addresses.tunnel.port, http: addresses.http!.port, tls: addresses.tls!.port };
      await gateway.close(2000);
      gateway = build(ports);
      addresses = await gateway.start();
    },
    async handover() {
      const ports = { tunnel: addresses.tunnel.port, http: addresses.http!.port, tls: addresses.tls!.port };
      const next = build(ports);
      const nextAddresses = await next.start();
      const old = gateway;
      gateway = next;
      addresses = nextAddresses;
      await old.close(5000);
    },
    async stop() {
      await gateway.close(2000);
    },
  } as GatewayFixture;
  return fixture;
}

export interface AgentRouteSpec {
  protocol: 'http' | 'tls' | 'tcp';
  hostname?: string;
  port?: number;
  backend: string;
  proxyProtocol?: 'none' | 'v1' | 'v2';
  terminate?: { certFile: string; keyFile: string; challengeFile: string; alpn?: string[]; forwardedHeaders?: boolean };
}

export async function startAgent(
  gateways: Array<{ name?: string; endpoints: string[]; credentials: AgentCredentialFiles }>,
  routes: AgentRouteSpec[],
  extra: Record<string, unknown> = {},
): Promise<{ agent: Agent; log: LogCapture }> {
  const log = new LogCapture();
  const agent = new Agent(
    parseConfig(
      {
        name: 'test-agent',
        gateways: gateways.map((g, i) => ({ name: g.name ?? `gw${i}`, endpoints: g.endpoints, ...g.credentials })),
        routes,
        reconnect: { initialMs: 50, maxMs: 500 },
        ...extra,
      },
      agentConfigSchema,
      'test agent',
    ),
    { logger: log.logger, credentialPollMs: 200 },
  );
  await agent.start();
  return { agent, log };
}

export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
