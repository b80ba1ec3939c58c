#!/usr/bin/env node
/**
 * The `webgw` command: argument parsing and wiring only (docs/architecture.md, Components). Each command loads
 * its own modules: a gateway or agent process does not carry node-forge, yaml rendering or the
 * Kubernetes client in its heap (every full GC walks the whole heap, and at full speed V8 runs
 * several per second, driven by the socket buffers).
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebgwError, describeError } from '../common/errors.ts';
import { createLogger } from '../common/log.ts';
import { runUntilSignal } from './lifecycle.ts';
import { tuneHeapForDataPlane } from './v8-tuning.ts';
import { pkiUsage } from './usage.ts';
import { parseDuration } from './durations.ts';

const usage = `webgw — publish workloads that accept no inbound connection

Usage:
  webgw demo [--port 8080]        a gateway, an agent and a private app on loopback
  webgw gateway --config FILE     run a gateway (YAML or JSON config)
  webgw agent --config FILE       run an agent (YAML or JSON config)
  webgw controller [--kubeconfig FILE] [--namespace webgw-system] [--image IMAGE]
                   [--leader-elect] [--manage-crds] [--admin 127.0.0.1:9902] [--dns-server HOST:PORT]
                   [--lease-duration 15s] [--session-probe-interval 10s] [--acme-ca-file FILE]
                   [--webhook 0.0.0.0:9443 [--webhook-host NAME]... [--webhook-configuration webgw-injector]]
                                  run the operator (in-cluster config when no kubeconfig)
  webgw pki init|issue ...        make a CA, the gateway certificate, agent certificates
  webgw crds                      print the CustomResourceDefinitions (kubectl apply -f -)
  webgw help

Logs are JSON lines on stderr; WEBGW_LOG_LEVEL=debug|info|warn|error.

${pkiUsage}`;

const out = (line: string): void => {
  process.stdout.write(line + '\n');
};

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'gateway':
      return runGateway(args);
    case 'agent':
      return runAgent(args);
    case 'demo':
      return runDemo(args);
    case 'controller':
      return runController(args);
    case 'pki': {
      const { pkiCommand } = await import('./pki-commands.ts');
      await pkiCommand(args, out);
      return 0;
    }
    case 'crds': {
      const { renderAllCrds } = await import('../controller/manifests.ts');
      process.stdout.write(renderAllCrds());
      return 0;
    }
    case 'help':
    case '--help':
    case '-h':
      out(usage);
      return 0;
    default:
      throw new WebgwError(
        'WEBGW_ERR_USAGE',
        command ? `unknown command ${JSON.stringify(command)}\n\n${usage}` : usage,
      );
  }
}

function configArg(args: string[]): string {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } } });
  if (!values.config) throw new WebgwError('WEBGW_ERR_USAGE', '--config FILE is required');
  return values.config;
}

async function runGateway(args: string[]): Promise<number> {
  tuneHeapForDataPlane();
  const { loadGatewayConfig } = await import('../proxy/config.ts');
  const { Gateway } = await import('../proxy/gateway.ts');
  const config = await loadGatewayConfig(configArg(args));
  const log = createLogger({ component: 'gateway' });
  const gateway = new Gateway(config, { logger: log });
  await gateway.start();
  await runUntilSignal(gateway, log);
  return 0;
}

async function runAgent(args: string[]): Promise<number> {
  tuneHeapForDataPlane();
  const { ReloadingAgent } = await import('../agent/reloading-agent.ts');
  const log = createLogger({ component: 'agent' });
  const agent = new ReloadingAgent({ configFile: configArg(args), logger: log });
  await agent.start();
  await runUntilSignal(agent, log);
  return 0;
}

async function runController(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      kubeconfig: { type: 'string' },
      namespace: { type: 'string', default: process.env.WEBGW_NAMESPACE ?? 'webgw-system' },
      image: { type: 'string', default: process.env.WEBGW_IMAGE ?? 'ghcr.io/webgw/webgw:latest' },
      'leader-elect': { type: 'boolean', default: false },
      'manage-crds': { type: 'boolean', default: false },
      admin: { type: 'string' },
      'lease-duration': { type: 'string' },
      webhook: { type: 'string' },
      'webhook-host': { type: 'string', multiple: true },
      'webhook-configuration': { type: 'string', default: 'webgw-injector' },
      'dns-server': { type: 'string' },
      'session-probe-interval': { type: 'string' },
      'acme-ca-file': { type: 'string' },
    },
  });
  const leaseMs =
    values['lease-duration'] === undefined
      ? undefined
      : parseDuration('--lease-duration', values['lease-duration'], 3000, 600_000);
  const probeMs =
    values['session-probe-interval'] === undefined
      ? undefined
      : parseDuration('--session-probe-interval', values['session-probe-interval'], 500, 600_000);
  const webhookListen = values.webhook ? parseHostPort(values.webhook) : undefined;
  const webhookHosts = values['webhook-host'] ?? [`webgw-webhook.${values.namespace}.svc`];
  const admin = values.admin ? parseHostPort(values.admin) : undefined;
  const acmeCaPem = values['acme-ca-file'] ? await readPem('--acme-ca-file', values['acme-ca-file']) : undefined;
  const log = createLogger({ component: 'controller' });
  const { loadKubeConfig } = await import('../controller/runtime/kube.ts');
  const { Manager } = await import('../controller/manager.ts');
  const manager = new Manager({
    kc: loadKubeConfig(values.kubeconfig),
    namespace: values.namespace,
    image: values.image,
    leaderElection: values['leader-elect'],
    manageCrds: values['manage-crds'],
    ...(admin ? { admin } : {}),
    ...(values['dns-server'] ? { dnsServer: values['dns-server'] } : {}),
    ...(leaseMs ? { leaseDurationMs: leaseMs } : {}),
    ...(probeMs ? { sessionProbeIntervalMs: probeMs } : {}),
    ...(acmeCaPem ? { acmeCaPem } : {}),
    ...(webhookListen
      ? {
          webhook: {
            ...webhookListen,
            hosts: webhookHosts,
            configurationName: values['webhook-configuration'],
            workerFile: webhookWorkerFile(),
          },
        }
      : {}),
    logger: log,
  });
  await manager.start();
  log.info('controller started', { namespace: values.namespace, leaderElection: values['leader-elect'] });
  await runUntilSignal(manager, log);
  return 0;
}

/** A file of PEM certificates, or a usage error naming the flag. */
async function readPem(flag: string, file: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new WebgwError('WEBGW_ERR_USAGE', `${flag}: cannot read ${file}: ${describeError(err)}`);
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----'))
    throw new WebgwError('WEBGW_ERR_USAGE', `${flag}: ${file} holds no PEM certificate`);
  return text;
}

/** A whole number of milliseconds within [min, max], or a usage error naming the flag. */
function parseHostPort(value: string): { address: string; port: number } {
  const idx = value.lastIndexOf(':');
  const port = Number(value.slice(idx + 1));
  if (idx <= 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new WebgwError('WEBGW_ERR_USAGE', `expected host:port, got ${JSON.stringify(value)}`);
  return { address: value.slice(0, idx), port };
}

async function runDemo(args: string[]): Promise<number> {
  tuneHeapForDataPlane();
  const { values } = parseArgs({ args, options: { port: { type: 'string', default: '8080' } } });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new WebgwError('WEBGW_ERR_USAGE', `--port must be 0..65535, got ${values.port}`);
  // The demo talks to a person: only warnings and errors as logs unless asked for more.
  const log = createLogger({ component: 'demo' }, { level: process.env.WEBGW_LOG_LEVEL ? undefined : 'warn' });
  const { startDemo } = await import('../demo/demo.ts');
  const demo = await startDemo({ httpPort: port, logger: log });
  out(`WebGW demo: a private app on 127.0.0.1:${demo.appPort} with no inbound path, served by an agent that dialed out to a local gateway.

  open     ${demo.httpUrl}
  curl     curl -H 'Host: hello.localhost' http://127.0.0.1:${demo.httpPort}/
  tcp      nc 127.0.0.1 ${demo.tcpPort}     (an echo service, also through the tunnel)
  metrics  ${demo.adminUrl}

Ctrl-C stops it.`);
  await runUntilSignal(demo, log, 5000);
  out('demo stopped');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof WebgwError && err.code === 'WEBGW_ERR_USAGE') {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`webgw: ${describeError(err)}\n`);
    process.exitCode = 1;
  },
);

/** The webhook thread's entry: worker.ts beside the sources, worker.js in the compiled image. */
function webhookWorkerFile(): string {
  const self = fileURLToPath(import.meta.url);
  return fileURLToPath(new URL(`../controller/webhook/worker${extname(self)}`, import.meta.url));
}
