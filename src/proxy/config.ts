/** The gateway's config file (`webgw gateway --config FILE`), YAML or JSON. */
import { z } from 'zod';
import { loadConfigFile, resolveFrom } from '../common/config-file.ts';
import { keepaliveSchema } from '../tunnel/keepalive.ts';

const port = z.number().int().min(0).max(65535);
const address = z.string().min(1).default('0.0.0.0');

const listener = z.strictObject({ address, port });

export const gatewayConfigSchema = z.strictObject({
  /** Used in logs and metrics; the Gateway object's name on Kubernetes. */
  name: z.string().min(1).max(253).default('gateway'),
  tunnel: z.strictObject({
    address,
    port: port.default(8443),
    /** The CA that issues agent certificates (only agents holding one may connect). */
    caFile: z.string().min(1),
    certFile: z.string().min(1),
    keyFile: z.string().min(1),
    /** Optional list of admitted agent certificates (serials); see pki/authorized-agents.ts. */
    authorizedAgentsFile: z.string().min(1).optional(),
    /** Pings to each agent; one that misses them is dropped and its streams fail (tunnel/keepalive.ts). */
    keepalive: keepaliveSchema,
  }),
  listeners: z
    .strictObject({
      http: listener.optional(),
      /** HTTPS and TLS by SNI (the CRD's `https` listener): passthrough, or terminated here. */
      https: listener
        .extend({
          /**
           * A folder of `<name>.crt` + `<name>.key` pairs the gateway terminates TLS with (https and
           * tls-terminated grants), reloaded when it changes (certificate-store.ts). Without it, TLS
           * is passed through only.
           */
          certificatesDir: z.string().min(1).optional(),
        })
        .optional(),
      tcp: z
        .strictObject({
          address,
          portRange: z.strictObject({ from: port, to: port }).refine((r) => r.from <= r.to, 'from must be <= to'),
        })
        .optional(),
    })
    .prefault({}),
  admin: listener.extend({ address: z.string().min(1).default('127.0.0.1') }).optional(),
  /**
   * Handover on one host: every listener is bound with SO_REUSEPORT, so a new gateway process
   * (a rolling update on the host network) listens before the old one stops; on SIGTERM the old
   * one closes its listeners first, then sends its agents to the new one (GOAWAY). Linux lets
   * only processes of the same user share a port.
   */
  sharePorts: z.boolean().default(false),
  /**
   * A file written once every listener is bound and removed when draining starts: the readiness
   * check of this very process. With sharePorts a TCP or HTTP probe may be answered by the other
   * process on the same port (a real node's DaemonSet rollout marked the new pod Ready before it
   * listened, and 10 of 156 requests were refused).
   */
  readyFile: z.string().min(1).optional(),
  limits: z
    .strictObject({
      maxAgents: z.number().int().min(1).max(100_000).default(1000),
      maxStreamsPerAgent: z.number().int().min(1).max(100_000).default(10_000),
      /** Sessions one agent identity (one ExposedService) may hold: one tenant cannot lock out the rest. */
      maxSessionsPerIdentity: z.number().int().min(1).max(100_000).default(64),
      /** Receive windows of all agents together: the gateway's memory for data clients have not read yet. */
      receiveBudgetBytes: z
        .number()
        .int()
        .min(1024 * 1024)
        .max(64 * 1024 ** 3)
        .default(256 * 1024 * 1024),
      /** Receive windows of one agent identity, across all its sessions. */
      receiveBudgetPerIdentityBytes: z
        .number()
        .int()
        .min(1024 * 1024)
        .max(64 * 1024 ** 3)
        .default(64 * 1024 * 1024),
      maxHeaderBytes: z
        .number()
        .int()
        .min(1024)
        .max(1024 * 1024)
        .default(16 * 1024),
      /** Public connections one client address may hold, across the HTTP, TLS and TCP listeners. */
      maxConnectionsPerClient: z.number().int().min(1).max(1_000_000).default(256),
      /** Public connections the gateway holds in all. */
      maxConnections: z.number().int().min(1).max(10_000_000).default(50_000),
      headerTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
      clientHelloTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
      openTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
      responseTimeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
      keepAliveTimeoutMs: z.number().int().min(100).max(600_000).default(5_000),
      /**
       * A connection for a route whose agents all left (restarting, moving to a new gateway process)
       * waits this long for one to come back before the 503. 0: answer at once.
       */
      agentWaitMs: z.number().int().min(0).max(60_000).default(0),
      /**
       * For this long after start, a connection for a name no agent has registered yet waits too
       * (at most agentWaitMs): after a handover the agents arrive a moment after the clients.
       */
      warmupMs: z.number().int().min(0).max(600_000).default(0),
    })
    .prefault({}),
});

export type GatewayConfig = z.output<typeof gatewayConfigSchema>;
export type GatewayLimits = GatewayConfig['limits'];

export async function loadGatewayConfig(file: string): Promise<GatewayConfig> {
  const config = await loadConfigFile(file, gatewayConfigSchema);
  const t = config.tunnel;
  const https = config.listeners.https;
  return {
    ...config,
    listeners: {
      ...config.listeners,
      ...(https
        ? {
            https: {
              ...https,
              ...(https.certificatesDir ? { certificatesDir: resolveFrom(file, https.certificatesDir) } : {}),
            },
          }
        : {}),
    },
    ...(config.readyFile ? { readyFile: resolveFrom(file, config.readyFile) } : {}),
    tunnel: {
      ...t,
      caFile: resolveFrom(file, t.caFile),
      certFile: resolveFrom(file, t.certFile),
      keyFile: resolveFrom(file, t.keyFile),
      ...(t.authorizedAgentsFile ? { authorizedAgentsFile: resolveFrom(file, t.authorizedAgentsFile) } : {}),
    },
  };
}
