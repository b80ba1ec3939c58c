import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { renderAuthorizedAgents, parseAuthorizedAgents } from '../../src/pki/authorized-agents.ts';
import { get, startHttpBackend } from '../helpers/http-client.ts';
import { TempDir, startAgent, startGateway, waitFor } from '../helpers/fixture.ts';

describe('withdrawn credentials', () => {
  let backend: Server;
  let port: number;

  beforeAll(async () => {
    ({ server: backend, port } = await startHttpBackend());
  });
  afterAll(() => backend.close());

  it('a gateway admits only listed certificates and closes a session whose certificate leaves the list', async () => {
    const dir = new TempDir();
    const listFile = dir.file('admitted-agents.txt');
    writeFileSync(listFile, renderAuthorizedAgents([]));
    const gw = await startGateway({ dir, authorizedAgentsFile: listFile });
    const creds = await gw.issueAgent('web', { http: ['web.localhost'] });
    const cert = new X509Certificate(readFileSync(creds.certFile));
    const { agent } = await startAgent(
      [{ endpoints: [gw.tunnelUrl], credentials: creds }],
      [{ protocol: 'http', hostname: 'web.localhost', backend: `127.0.0.1:${port}` }],
    );
    // Not listed yet: refused, with a log line saying why.
    await waitFor(
      () => gw.log.lines.some((l) => String(l.msg).startsWith('agent refused: credential not admitted')),
      5000,
      'refusal',
    );
    expect(gw.gateway.agentCount).toBe(0);
    // Listed: admitted (the agent retries on its own).
    writeFileSync(listFile, renderAuthorizedAgents([cert.serialNumber]));
    await waitFor(() => gw.gateway.agentCount === 1, 10_000, 'admission');
    expect((await get(gw.httpPort, 'web.localhost')).status).toBe(200);
    // Withdrawn (the ExposedService was deleted): the session goes at once, the route with it.
    writeFileSync(listFile, renderAuthorizedAgents([]));
    await waitFor(
      () => gw.log.lines.some((l) => l.msg === 'agent credential withdrawn; closing its session'),
      10_000,
      'withdrawal',
    );
    await waitFor(() => gw.gateway.agentCount === 0, 5000, 'session closed');
    // Gone for good: 404 at once (a route whose agent merely left answers 503, after agentWaitMs).
    expect((await get(gw.httpPort, 'web.localhost')).status).toBe(404);
    await agent.close(500);
    await gw.stop();
    dir.remove();
  });

  it.each([
    ['a line that is no serial', '# comment\nAB12\nxyz\n', /admitted-agents.txt:3: not a certificate serial/],
    ['YAML from an older controller', 'agents: []\n', /not a certificate serial/],
    ['a serial of 65 hex digits', `${'A'.repeat(65)}\n`, /not a certificate serial/],
  ])('rejects a list with %s (the gateway keeps its previous list)', (_name, text, pattern) => {
    expect(() => parseAuthorizedAgents(text, 'admitted-agents.txt')).toThrow(pattern);
  });
});
