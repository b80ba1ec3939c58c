/** Which local backend serves an incoming stream: a pure match on the OPEN's route. */
import { hostnameMatches, normalizeHostname } from '../pki/grants.ts';
import type { OpenRequest } from '../tunnel/open.ts';
import type { AgentRoute, ProxyProtocolVersion, TerminateFiles } from './config.ts';

export interface Backend {
  host: string;
  port: number;
  proxyProtocol: ProxyProtocolVersion;
}

export interface CompiledRoute {
  protocol: AgentRoute['protocol'];
  hostname: string;
  port: number;
  /** TCP routes may be scoped to one gateway; undefined serves every gateway. */
  gateway?: string;
  backend: Backend;
  /** TLS terminated here, with the certificate in these files. */
  terminate?: TerminateFiles;
}

export function compileRoutes(
  routes: readonly AgentRoute[],
  defaultProxyProtocol: ProxyProtocolVersion,
): CompiledRoute[] {
  return routes.map((r) => {
    const idx = r.backend.lastIndexOf(':');
    const host = r.backend.slice(0, idx).replace(/^\[(.*)\]$/, '$1');
    const backend = {
      host,
      port: Number(r.backend.slice(idx + 1)),
      proxyProtocol: r.proxyProtocol ?? defaultProxyProtocol,
    };
    return r.protocol === 'tcp'
      ? { protocol: 'tcp', hostname: '', port: r.port, backend, ...(r.gateway ? { gateway: r.gateway } : {}) }
      : {
          protocol: r.protocol,
          hostname: normalizeHostname(r.hostname),
          port: 0,
          backend,
          ...(r.protocol === 'tls' && r.terminate ? { terminate: r.terminate } : {}),
        };
  });
}

/** Exact names first, then wildcards; undefined when the agent has no backend for it. */
export function matchRoute(
  routes: readonly CompiledRoute[],
  open: Pick<OpenRequest, 'protocol' | 'hostname' | 'port'>,
  gateway?: string,
): CompiledRoute | undefined {
  if (open.protocol === 'tcp')
    return routes.find(
      (r) => r.protocol === 'tcp' && r.port === open.port && (r.gateway === undefined || r.gateway === gateway),
    );
  return (
    routes.find((r) => r.protocol === open.protocol && r.hostname === open.hostname) ??
    routes.find((r) => r.protocol === open.protocol && hostnameMatches(r.hostname, open.hostname))
  );
}
