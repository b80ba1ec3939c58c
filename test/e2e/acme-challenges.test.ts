/**
 * ACME HTTP-01 answers on a real gateway: the controller's responder (the code the controller
 * runs) hands an answer to the replica over mutual TLS, and the HTTP listener serves it for
 * that hostname only, before routing and before the HTTPS redirect. Only the responder
 * certificate of this gateway's CA may write answers: an agent's, a session reader's, a
 * foreign CA's are refused, and bad bodies get a clear 4xx and change nothing.
 */
import { request } from 'node:https';
import { systemClock } from '../../src/common/clock.ts';
import { ACME_CHALLENGE_PATH } from '../../src/common/acme-challenge.ts';
import { ChallengeResponder } from '../../src/controller/acme/responder.ts';
import { ACME_RESPONDER_GRANT, SESSION_READER_GRANT } from '../../src/pki/grants.ts';
import { createCA, issueAgentCertificate, issueControllerCertificate, type KeyPairPem } from '../../src/pki/issue.ts';
import { emptyGrants } from '../../src/pki/grants.ts';
import { hours, startGateway, type GatewayFixture } from '../helpers/fixture.ts';
import { get } from '../helpers/http-client.ts';

const TOKEN = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0';
const KEY_AUTH = `${TOKEN}.ZrHxb9u_W4zGp8XEnjLa1M8ixGm_JRXyZ8gXgH4-sbE`;
const WELL_KNOWN = `/.well-known/acme-challenge/${TOKEN}`;

function put(
  gw: GatewayFixture,
  client: KeyPairPem,
  body: string,
  token = TOKEN,
  method = 'PUT',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: gw.addresses.tunnel.port,
        path: `${ACME_CHALLENGE_PATH}${token}`,
        method,
        servername: 'localhost',
        ca: gw.ca.certPem,
        cert: client.certPem,
        key: client.keyPem,
        agent: false,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res
          .setEncoding('utf8')
          .on('data', (d: string) => {
            text += d;
          })
          .on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('ACME HTTP-01 answers on the gateway', () => {
  let gw: GatewayFixture;
  let responderPair: KeyPairPem;
  const responder = new ChallengeResponder(systemClock);
  const targets = () => ({
    gateway: 'eu',
    ca: gw.ca,
    serverName: 'localhost',
    port: gw.addresses.tunnel.port,
    replicas: [{ pod: 'eu-a', address: '127.0.0.1' }],
  });

  beforeAll(async () => {
    gw = await startGateway();
    responderPair = issueControllerCertificate(gw.ca, ACME_RESPONDER_GRANT, hours(1));
  });

  afterAll(async () => {
    await gw.stop();
    gw.dir.remove();
  });

  it('serves the answer the controller handed over, for its hostname only, until withdrawn', async () => {
    expect((await get(gw.httpPort, 'own.tenant.example', WELL_KNOWN)).status).toBe(404);
    await responder.publish(targets(), TOKEN, { hostname: 'own.tenant.example', keyAuthorization: KEY_AUTH });
    const answer = await get(gw.httpPort, 'own.tenant.example', WELL_KNOWN);
    expect(answer).toMatchObject({ status: 200, body: KEY_AUTH });
    expect(answer.headers['content-type']).toBe('application/octet-stream');
    // Another Host, or a path beside the token, is routed as any request (no route: 404).
    expect((await get(gw.httpPort, 'other.tenant.example', WELL_KNOWN)).status).toBe(404);
    expect((await get(gw.httpPort, 'own.tenant.example', `${WELL_KNOWN}x`)).status).toBe(404);
    await responder.withdraw(targets(), TOKEN);
    expect((await get(gw.httpPort, 'own.tenant.example', WELL_KNOWN)).status).toBe(404);
  });

  it('refuses every certificate but the responder one of this gateway', async () => {
    const body = JSON.stringify({ hostname: 'own.tenant.example', keyAuthorization: KEY_AUTH });
    const agent = issueAgentCertificate(
      gw.ca,
      { ...emptyGrants(), http: ['own.tenant.example'], identity: 't/web/u1' },
      hours(1),
    );
    const reader = issueControllerCertificate(gw.ca, SESSION_READER_GRANT, hours(1));
    expect((await put(gw, agent, body)).status).toBe(403);
    expect((await put(gw, reader, body)).status).toBe(403);
    const foreign = issueControllerCertificate(createCA('someone else', hours(1)), ACME_RESPONDER_GRANT, hours(1));
    await expect(put(gw, foreign, body)).rejects.toThrow();
    expect((await get(gw.httpPort, 'own.tenant.example', WELL_KNOWN)).status).toBe(404);
    // And the responder cannot read the session table.
    const sessions = await put(gw, responderPair, '', '', 'GET').catch(() => ({ status: 0 }));
    expect(sessions.status).not.toBe(204);
  });

  it('answers bad input with a clear 4xx and keeps nothing', async () => {
    expect(await put(gw, responderPair, 'not json')).toMatchObject({
      status: 400,
      body: expect.stringContaining('not JSON'),
    });
    expect(
      (await put(gw, responderPair, JSON.stringify({ hostname: 'a.example', keyAuthorization: KEY_AUTH }), 'short'))
        .status,
    ).toBe(400);
    expect(
      (await put(gw, responderPair, JSON.stringify({ hostname: 'bad host', keyAuthorization: KEY_AUTH }))).status,
    ).toBe(400);
    expect((await put(gw, responderPair, 'x'.repeat(4096))).status).toBe(413);
    expect((await put(gw, responderPair, '', TOKEN, 'POST')).status).toBe(405);
    expect((await get(gw.httpPort, 'a.example', WELL_KNOWN)).status).toBe(404);
    // The gateway still serves.
    expect((await get(gw.httpPort, 'a.example', '/')).status).toBe(404);
  });
});
