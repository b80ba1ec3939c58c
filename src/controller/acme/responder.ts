/**
 * Hands an ACME HTTP-01 answer to every replica of a Gateway before the ACME server is told to
 * validate, and takes it back after (common/acme-challenge.ts): over mutual TLS on each replica's
 * tunnel port, with the controller's responder certificate for that gateway. No kubelet, no
 * volume sync: the replica answers the moment the PUT returns.
 */
import { ACME_CHALLENGE_PATH, type ChallengeAnswer } from '../../common/acme-challenge.ts';
import type { Clock } from '../../common/clock.ts';
import { WebgwError, describeError } from '../../common/errors.ts';
import { ACME_RESPONDER_GRANT } from '../../pki/grants.ts';
import { ControllerCertificates } from '../edge/controller-certificates.ts';
import { replicaRequest } from '../edge/replica-request.ts';
import type { GatewayTargets } from '../sessions/probe.ts';

const TIMEOUT_MS = 5000;
const MAX_ANSWER_BYTES = 4096;

export class ChallengeResponder {
  private readonly certificates: ControllerCertificates;

  constructor(clock: Clock) {
    this.certificates = new ControllerCertificates(clock, ACME_RESPONDER_GRANT);
  }

  /**
   * PUT the answer on every replica; throws unless every one took it (a replica without it may
   * be the one the ACME server reaches, and the order would fail).
   */
  async publish(targets: GatewayTargets, token: string, answer: ChallengeAnswer): Promise<void> {
    if (targets.replicas.length === 0)
      throw new WebgwError(
        'WEBGW_ERR_ACME',
        `Gateway ${targets.gateway} has no running proxy replica to answer the HTTP-01 challenge`,
      );
    const failed = (await this.send(targets, 'PUT', token, JSON.stringify(answer))).filter((r) => r.error);
    if (failed.length > 0) {
      throw new WebgwError(
        'WEBGW_ERR_ACME',
        `the HTTP-01 answer could not be handed to ${failed.map((r) => `${r.pod} (${r.error})`).join(', ')}`,
      );
    }
  }

  /** DELETE the answer everywhere; a replica that cannot be reached drops it at its expiry. */
  async withdraw(targets: GatewayTargets, token: string): Promise<void> {
    await this.send(targets, 'DELETE', token);
  }

  private send(
    t: GatewayTargets,
    method: 'PUT' | 'DELETE',
    token: string,
    body?: string,
  ): Promise<Array<{ pod: string; error?: string }>> {
    const client = this.certificates.for(t.gateway, t.ca);
    return Promise.all(
      t.replicas.map(async (r) => {
        try {
          const answer = await replicaRequest({
            address: r.address,
            port: t.port,
            serverName: t.serverName,
            caPem: t.ca.certPem,
            client,
            method,
            path: `${ACME_CHALLENGE_PATH}${token}`,
            ...(body === undefined ? {} : { body }),
            timeoutMs: TIMEOUT_MS,
            maxResponseBytes: MAX_ANSWER_BYTES,
          });
          return answer.status === 204
            ? { pod: r.pod }
            : { pod: r.pod, error: `HTTP ${answer.status}: ${answer.body.trim().slice(0, 120)}` };
        } catch (err) {
          return { pod: r.pod, error: describeError(err).slice(0, 120) };
        }
      }),
    );
  }
}
