/** The agent's config file (`webgw agent --config FILE`), YAML or JSON. */
import { z } from 'zod';
import { loadConfigFile, resolveFrom } from '../common/config-file.ts';
import { keepaliveSchema } from '../tunnel/keepalive.ts';

const proxyProtocol = z.enum(['none', 'v1', 'v2']);
const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:8080');

const route = z.discriminatedUnion('protocol', [
  z.strictObject({
    protocol: z.literal('http'),
    hostname: z.string().min(1),
    backend: hostPort,
    proxyProtocol: proxyProtocol.optional(),
  }),
  z.strictObject({
    protocol: z.literal('tls'),
    hostname: z.string().min(1),
    backend: hostPort,
    proxyProtocol: proxyProtocol.optional(),
    /**
     * The agent terminates TLS itself (ExposedService `termination: Agent`) and relays the
     * plaintext. The files may not exist yet (the certificate is being ordered): reloaded live.
     * `challengeFile`: key and certificate (PEM) answering an ACME TLS-ALPN-01 validation.
     */
    terminate: z
      .strictObject({
        certFile: z.string().min(1),
        keyFile: z.string().min(1),
        challengeFile: z.string().min(1),
        /** ALPN protocols offered to clients, in the server's order of preference (what the backend speaks). */
        alpn: z.array(z.string().min(1).max(255)).max(8).optional(),
        /** The decrypted stream is HTTP/1.1: each request gets this hop's X-Forwarded-* fields. */
        forwardedHeaders: z.boolean().optional(),
      })
      .optional(),
  }),
  z.strictObject({
    protocol: z.literal('tcp'),
    port: z.number().int().min(1).max(65535),
    backend: hostPort,
    proxyProtocol: proxyProtocol.optional(),
    /** Only for streams from this gateway (each gateway allocates its own public ports). */
    gateway: z.string().min(1).optional(),
  }),
]);

export const agentConfigSchema = z.strictObject({
  name: z.string().min(1).max(253).default('agent'),
  gateways: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        /** One session is held to every endpoint (each gateway replica). */
        endpoints: z
          .array(z.string().regex(/^wss:\/\//, 'tunnel endpoints are wss:// URLs'))
          .min(1)
          .max(64),
        /** This gateway's CA: pinned, so nobody else can pose as the gateway. */
        caFile: z.string().min(1),
        certFile: z.string().min(1),
        keyFile: z.string().min(1),
        /** Name to verify in the gateway's certificate instead of the endpoint's host. */
        serverName: z.string().min(1).optional(),
      }),
    )
    .max(32),
  // Both may be empty: the controller renders an agent with nothing to serve yet (namespace not
  // admitted, gateway without endpoints); the agent then waits, not ready, for a new config.
  routes: z.array(route).max(1024),
  /** PROXY protocol header towards the backend for TLS and TCP routes (HTTP has X-Forwarded-For). */
  proxyProtocol: proxyProtocol.default('none'),
  admin: z
    .strictObject({ address: z.string().min(1).default('127.0.0.1'), port: z.number().int().min(0).max(65535) })
    .optional(),
  /** Pings to each gateway; a session that misses them is closed and dialed again (tunnel/keepalive.ts). */
  keepalive: keepaliveSchema,
  reconnect: z
    .strictObject({
      initialMs: z.number().int().min(10).max(60_000).default(250),
      maxMs: z.number().int().min(100).max(600_000).default(15_000),
    })
    .prefault({}),
  limits: z
    .strictObject({
      connectTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
      /** TLS routes the agent terminates: ClientHello and handshake within this. */
      handshakeTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
      maxStreams: z.number().int().min(1).max(100_000).default(10_000),
    })
    .prefault({}),
});

export type AgentConfig = z.output<typeof agentConfigSchema>;
export type AgentRoute = AgentConfig['routes'][number];
export type GatewayEndpointConfig = AgentConfig['gateways'][number];
export type TerminateFiles = NonNullable<Extract<AgentRoute, { protocol: 'tls' }>['terminate']>;
export type ProxyProtocolVersion = z.output<typeof proxyProtocol>;

export async function loadAgentConfig(file: string): Promise<AgentConfig> {
  const config = await loadConfigFile(file, agentConfigSchema);
  return {
    ...config,
    routes: config.routes.map((r) =>
      r.protocol === 'tls' && r.terminate
        ? {
            ...r,
            terminate: {
              ...r.terminate,
              certFile: resolveFrom(file, r.terminate.certFile),
              keyFile: resolveFrom(file, r.terminate.keyFile),
              challengeFile: resolveFrom(file, r.terminate.challengeFile),
            },
          }
        : r,
    ),
    gateways: config.gateways.map((g) => ({
      ...g,
      caFile: resolveFrom(file, g.caFile),
      certFile: resolveFrom(file, g.certFile),
      keyFile: resolveFrom(file, g.keyFile),
    })),
  };
}
