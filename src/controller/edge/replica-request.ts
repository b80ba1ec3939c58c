/**
 * One request from the controller to one gateway replica's tunnel port, over mutual TLS: the
 * replica must present its gateway's tunnel certificate (serverName, that gateway's CA), and
 * the controller presents a certificate of the same CA carrying one controller grant
 * (controller-certificates.ts). The whole exchange is bounded in time and the answer in size.
 */
import { request } from 'node:https';
import { WebgwError } from '../../common/errors.ts';
import type { KeyPairPem } from '../../pki/issue.ts';

export interface ReplicaRequest {
  address: string;
  port: number;
  serverName: string;
  /** The gateway's CA: the replica's certificate must chain to it. */
  caPem: string;
  client: KeyPairPem;
  method: 'GET' | 'PUT' | 'DELETE';
  path: string;
  body?: string;
  timeoutMs: number;
  maxResponseBytes: number;
}

export interface ReplicaAnswer {
  status: number;
  body: string;
}

export function replicaRequest(o: ReplicaRequest): Promise<ReplicaAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (o.body !== undefined)
      Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(o.body) });
    const req = request(
      {
        host: o.address,
        port: o.port,
        path: o.path,
        method: o.method,
        servername: o.serverName,
        ca: o.caPem,
        cert: o.client.certPem,
        key: o.client.keyPem,
        agent: false,
        timeout: o.timeoutMs,
        headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > o.maxResponseBytes)
            req.destroy(new WebgwError('WEBGW_ERR_PROTOCOL', `answer larger than ${o.maxResponseBytes} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    const timedOut = (): void => {
      req.destroy(new WebgwError('WEBGW_ERR_TIMEOUT', 'timeout'));
    };
    // `timeout` is for an idle socket; the deadline bounds the whole exchange.
    const deadline = setTimeout(timedOut, o.timeoutMs);
    req.on('close', () => clearTimeout(deadline));
    req.on('timeout', timedOut);
    req.on('error', reject);
    req.end(o.body);
  });
}
