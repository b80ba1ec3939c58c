/**
 * Certificates for TLS routes the agents terminate (ExposedService `termination: Agent`), ordered
 * through ACME TLS-ALPN-01 (RFC 8737) under the account of a Gateway with spec.acme. The key is
 * made here and goes, with the chain, only into the tenant's credential Secret (the agents mount
 * it; the edge relays ciphertext and never holds either). The validation handshake reaches the
 * agents through the gateways' TLS passthrough, like any client's, so the challenge certificate
 * travels the same way: into the credential Secret, then the agents' volume.
 *
 * That volume lags the API (the kubelet syncs Secrets every minute or so): before the ACME server
 * is asked to validate, the controller connects to every replica of every gateway serving the
 * name, as the ACME server will, until each answers with this challenge as many times in a row
 * as there are agents (the gateway spreads new streams over them). The ExposedService reconciler
 * is the only writer of the Secret: it asks here for the challenge to publish and for a pair
 * issued but not yet written.
 */
import { connect } from 'node:tls';
import { crypto as acmeCrypto } from 'acme-client';
import type { Clock } from '../../common/clock.ts';
import { WebgwError } from '../../common/errors.ts';
import type { AcmeFailureStatus, Gateway } from '../../crds/types.ts';
import type { AcmeIssuer, ChallengeSolver, IssuedPair } from './issuer.ts';

export const ACME_TLS_ALPN = 'acme-tls/1';
/** How long the agents may take to serve a challenge (the kubelet's Secret sync, ~1-2 min). */
const SERVED_WITHIN_MS = 240_000;
const CHECK_EVERY_MS = 1000;
const HANDSHAKE_TIMEOUT_MS = 3000;
/** Consecutive good answers asked of each replica: its agents, within this bound. */
const MAX_ROUNDS = 16;

/** Where a validation of the name lands: a gateway replica's HTTPS (passthrough) listener. */
export interface HttpsTarget {
  address: string;
  port: number;
}

export interface AgentOrderRequest {
  /** The Gateway whose spec.acme account orders. */
  account: Gateway;
  /** `namespace/name` of the ExposedService. */
  service: string;
  hostnames: readonly string[];
  /** Where the ACME server's validation may land, read when the challenge is checked. */
  targets: () => HttpsTarget[];
  /** How many agents serve the service (each must have loaded the challenge). */
  agents: number;
}

export interface AgentOrdersOptions {
  issuer: AcmeIssuer;
  clock: Clock;
  /** A challenge appeared or went, or a pair was issued: reconcile this ExposedService. */
  onChanged: (service: string) => void;
  servedWithinMs?: number;
}

const key = (service: string, hostname: string): string => `${service}\n${hostname}`;

export class AgentOrders {
  private readonly opts: AgentOrdersOptions;
  private readonly challenges = new Map<string, string>();
  private readonly issued = new Map<string, IssuedPair>();

  constructor(opts: AgentOrdersOptions) {
    this.opts = opts;
  }

  request(r: AgentOrderRequest): void {
    this.opts.issuer.requestFor(r.account, r.service, r.hostnames, [], (hostname) => ({
      solver: this.solver(r, hostname),
      deliver: async (pair) => {
        this.issued.set(key(r.service, hostname), pair);
      },
      changed: () => this.opts.onChanged(r.service),
    }));
  }

  /** The challenge (key and certificate, PEM) the agents should serve for this name now. */
  challenge(service: string, hostname: string): string | undefined {
    return this.challenges.get(key(service, hostname));
  }

  /** A pair issued for this name that the Secret may not hold yet. */
  issuedPair(service: string, hostname: string): IssuedPair | undefined {
    return this.issued.get(key(service, hostname));
  }

  /** The Secret holds this certificate now: the copy here goes. */
  written(service: string, hostname: string, certPem: string): void {
    if (this.issued.get(key(service, hostname))?.certPem === certPem) this.issued.delete(key(service, hostname));
  }

  /** The failures of this service's orders; `previous`: those its status showed (taken once). */
  failures(
    service: string,
    wanted: ReadonlySet<string>,
    previous: readonly AcmeFailureStatus[] = [],
  ): AcmeFailureStatus[] {
    this.opts.issuer.seed(service, previous);
    return this.opts.issuer.failures(service, wanted);
  }

  ordering(service: string, hostname: string): boolean {
    return this.opts.issuer.ordering(service, hostname);
  }

  /** The service was deleted: whatever was held for it goes. */
  forget(service: string): void {
    this.opts.issuer.forget(service);
    for (const map of [this.challenges, this.issued])
      for (const k of [...map.keys()]) if (k.startsWith(`${service}\n`)) map.delete(k);
  }

  private solver(r: AgentOrderRequest, hostname: string): ChallengeSolver {
    const k = key(r.service, hostname);
    return {
      type: 'tls-alpn-01',
      present: async (authz, _token, keyAuthorization) => {
        const [challengeKey, challengeCert] = await acmeCrypto.createAlpnCertificate(authz, keyAuthorization);
        this.challenges.set(k, `${challengeKey.toString()}${challengeCert.toString()}`);
        this.opts.onChanged(r.service);
        await this.waitUntilServed(r, hostname, keyAuthorization);
      },
      withdraw: async () => {
        if (this.challenges.delete(k)) this.opts.onChanged(r.service);
      },
    };
  }

  private async waitUntilServed(r: AgentOrderRequest, hostname: string, keyAuthorization: string): Promise<void> {
    const { clock } = this.opts;
    const deadline = clock.now() + (this.opts.servedWithinMs ?? SERVED_WITHIN_MS);
    const rounds = Math.max(1, Math.min(MAX_ROUNDS, r.agents));
    let last = 'no gateway replica serves the name';
    for (;;) {
      const targets = r.targets();
      if (targets.length > 0) {
        const missing: string[] = [];
        for (const t of targets) {
          for (let i = 0; i < rounds; i++) {
            const answer = await servedChallenge(t, hostname, keyAuthorization);
            if (answer !== true) {
              missing.push(`${t.address}:${t.port} (${answer})`);
              break;
            }
          }
        }
        if (missing.length === 0) return;
        last = `not yet served through ${missing.join(', ')}`;
      }
      if (clock.now() >= deadline) {
        throw new WebgwError(
          'WEBGW_ERR_ACME',
          `the agents did not serve the TLS-ALPN-01 challenge for ${hostname} within ${Math.round((this.opts.servedWithinMs ?? SERVED_WITHIN_MS) / 1000)} s: ${last}`,
        );
      }
      await new Promise<void>((resolve) => clock.setTimeout(resolve, CHECK_EVERY_MS));
    }
  }
}

/** One validation handshake as the ACME server makes it: true, or what came back instead. */
function servedChallenge(t: HttpsTarget, hostname: string, keyAuthorization: string): Promise<true | string> {
  return new Promise((resolve) => {
    const socket = connect({
      host: t.address,
      port: t.port,
      servername: hostname,
      ALPNProtocols: [ACME_TLS_ALPN],
      rejectUnauthorized: false,
    });
    const done = (answer: true | string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done('timeout'), HANDSHAKE_TIMEOUT_MS);
    socket.once('error', (err) => done(err.message));
    socket.once('secureConnect', () => {
      const peer = socket.getPeerX509Certificate();
      if (socket.alpnProtocol !== ACME_TLS_ALPN || !peer) return done('no acme-tls/1 handshake');
      done(
        acmeCrypto.isAlpnCertificateAuthorizationValid(peer.toString(), keyAuthorization) ? true : 'another challenge',
      );
    });
  });
}
