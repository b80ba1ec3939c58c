/**
 * A gateway replaced on the same host and ports (a DaemonSet rollout on the host network,
 * issue 13): the new process binds beside the old one (sharePorts), the old one stops accepting
 * clients and sends its agents over (GOAWAY), clients that reach the new one first wait for the
 * agents (agentWaitMs, warmupMs). Under a steady load, no request may fail.
 */
import { readFileSync } from 'node:fs';
import { get, startHttpBackend } from '../helpers/http-client.ts';
import { startAgent, startGateway, waitFor } from '../helpers/fixture.ts';

const HOST = 'app.localhost';
/**
 * Without net.ipv4.tcp_migrate_req=1 the kernel resets the connections still in the old
 * listener's accept queue when it closes (the client sees `connect ECONNRESET`); with it, they
 * move to the new listener. The real-node test sets it on the farmer node; here it is the host's.
 */
const MIGRATES = readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim() === '1';

describe('gateway handover on shared ports', () => {
  it('loses no request while a new gateway process takes over from the old one', async () => {
    const backend = await startHttpBackend((_req, res) => res.end('app'));
    const gw = await startGateway({ sharePorts: true, limits: { agentWaitMs: 5000, warmupMs: 10_000 } });
    const creds = await gw.issueAgent('app', { http: [HOST] });
    const { agent } = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: creds }],
      [{ protocol: 'http', hostname: HOST, backend: `127.0.0.1:${backend.port}` }],
    );
    await waitFor(() => gw.gateway.agentCount === 1);

    const statuses: number[] = [];
    const errors: string[] = [];
    let running = true;
    // Four clients in a loop, each request on a new connection.
    const loops = Array.from({ length: 4 }, async () => {
      while (running)
        statuses.push(
          (
            await get(gw.httpPort, HOST).catch((err: NodeJS.ErrnoException) => {
              errors.push(`${err.code ?? ''} ${err.message}`);
              return { status: 0 };
            })
          ).status,
        );
    });
    await new Promise((r) => setTimeout(r, 300));
    const old = gw.gateway;
    await gw.handover();
    expect(gw.gateway).not.toBe(old);
    await waitFor(() => gw.gateway.agentCount === 1);
    await new Promise((r) => setTimeout(r, 300));
    running = false;
    await Promise.all(loops);

    expect(statuses.length).toBeGreaterThan(40);
    if (MIGRATES) expect(errors).toEqual([]);
    else expect(errors.filter((e) => !e.startsWith('ECONNRESET connect ECONNRESET'))).toEqual([]);
    expect(statuses.filter((s) => s !== 200 && s !== 0)).toEqual([]);
    await agent.close(1000);
    await gw.stop();
    backend.server.close();
    gw.dir.remove();
  });

  it('without sharePorts a second gateway cannot bind the same ports', async () => {
    const gw = await startGateway();
    await expect(gw.handover()).rejects.toThrow(/EADDRINUSE/);
    await gw.stop();
    gw.dir.remove();
  });
});
