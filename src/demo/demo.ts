/**
 * `webgw demo`: a throwaway CA, a gateway on loopback, an agent and a private app, wired exactly
 * as a real deployment is (mutual TLS tunnel, grants in the agent certificate).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentConfigSchema } from '../agent/config.ts';
import { Agent } from '../agent/agent.ts';
import { parseConfig } from '../common/config-file.ts';
import type { Logger } from '../common/log.ts';
import { freeLoopbackPort } from '../common/net.ts';
import { writeKeyPair } from '../pki/files.ts';
import { createCA, issueAgentCertificate, issueServerCertificate } from '../pki/issue.ts';
import { gatewayConfigSchema } from '../proxy/config.ts';
import { Gateway } from '../proxy/gateway.ts';
import { startPrivateApp, type PrivateApp } from './private-app.ts';
import { WebgwError } from '../common/errors.ts';

export const DEMO_HOSTNAME = 'hello.localhost';
const HOUR = 3600_000;

export interface DemoOptions {
  /** Public HTTP port; 0 picks a free one. */
  httpPort: number;
  logger: Logger;
}

export interface Demo {
  httpUrl: string;
  httpPort: number;
  tcpPort: number;
  adminUrl: string;
  appPort: number;
  close(): Promise<void>;
  destroy(): void;
}

export async function startDemo(opts: DemoOptions): Promise<Demo> {
  const dir = await mkdtemp(join(tmpdir(), 'webgw-demo-'));
  let app: PrivateApp | undefined;
  try {
    const ca = createCA('webgw demo CA', { notAfter: new Date(Date.now() + 24 * HOUR) });
    const tcpPort = await freeLoopbackPort();
    const httpPort = await freeLoopbackPort(opts.httpPort);
    await writeKeyPair(dir, 'ca', ca);
    await writeKeyPair(
      dir,
      'gateway',
      issueServerCertificate(ca, ['127.0.0.1', 'localhost'], { notAfter: new Date(Date.now() + 24 * HOUR) }),
    );
    await writeKeyPair(
      dir,
      'agent',
      issueAgentCertificate(
        ca,
        {
          http: [DEMO_HOSTNAME],
          https: [],
          tls: [],
          tlsTerminated: [],
          tcp: [tcpPort],
          h2c: [],
          identity: 'demo/hello',
        },
        { notAfter: new Date(Date.now() + 12 * HOUR) },
      ),
    );
    app = await startPrivateApp();

    const gateway = new Gateway(
      parseConfig(
        {
          name: 'demo',
          tunnel: {
            address: '127.0.0.1',
            port: 0,
            caFile: join(dir, 'ca.crt'),
            certFile: join(dir, 'gateway.crt'),
            keyFile: join(dir, 'gateway.key'),
          },
          listeners: {
            http: { address: '127.0.0.1', port: httpPort },
            tcp: { address: '127.0.0.1', portRange: { from: tcpPort, to: tcpPort } },
          },
          admin: { address: '127.0.0.1', port: 0 },
        },
        gatewayConfigSchema,
        'demo gateway',
      ),
      { logger: opts.logger.child({ component: 'gateway' }) },
    );
    const addresses = await gateway.start();

    const agent = new Agent(
      parseConfig(
        {
          name: 'demo',
          gateways: [
            {
              name: 'demo',
              endpoints: [`wss://127.0.0.1:${addresses.tunnel.port}`],
              caFile: join(dir, 'ca.crt'),
              certFile: join(dir, 'agent.crt'),
              keyFile: join(dir, 'agent.key'),
            },
          ],
          routes: [
            { protocol: 'http', hostname: DEMO_HOSTNAME, backend: `127.0.0.1:${app.httpPort}` },
            { protocol: 'tcp', port: tcpPort, backend: `127.0.0.1:${app.echoPort}` },
          ],
        },
        agentConfigSchema,
        'demo agent',
      ),
      { logger: opts.logger.child({ component: 'agent' }) },
    );
    await agent.start();
    await waitFor(() => gateway.agentCount > 0 && gateway.tcpPorts.includes(tcpPort), 10_000);

    const privateApp = app;
    const cleanup = async (): Promise<void> => {
      privateApp.close();
      await rm(dir, { recursive: true, force: true });
    };
    const port = addresses.http?.port ?? httpPort;
    return {
      httpUrl: `http://${DEMO_HOSTNAME}:${port}/`,
      httpPort: port,
      tcpPort,
      adminUrl: `http://127.0.0.1:${addresses.admin?.port}/metrics`,
      appPort: app.httpPort,
      async close() {
        await agent.close(3000);
        await gateway.close(3000);
        await cleanup();
      },
      destroy() {
        agent.destroy();
        gateway.destroy();
        void cleanup();
      },
    };
  } catch (err) {
    app?.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new WebgwError('WEBGW_ERR_TIMEOUT', 'the demo agent did not connect to its gateway in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
