/**
 * The short-lived client certificates the controller uses on gateways' tunnel ports, one per
 * gateway and grant (pki/verify.ts verifyControllerCertificate), issued from that gateway's CA
 * and reissued when the CA changes or at two thirds of their life.
 */
import type { Clock } from '../../common/clock.ts';
import type { ControllerGrant } from '../../pki/grants.ts';
import { issueControllerCertificate, validFor, type KeyPairPem } from '../../pki/issue.ts';

const VALIDITY_MS = 3600_000;

export class ControllerCertificates {
  private readonly clock: Clock;
  private readonly grant: ControllerGrant;
  private readonly issued = new Map<string, { caPem: string; pair: KeyPairPem; renewAt: number }>();

  constructor(clock: Clock, grant: ControllerGrant) {
    this.clock = clock;
    this.grant = grant;
  }

  /** The certificate for this gateway, from its CA as it is now. */
  for(gateway: string, ca: KeyPairPem): KeyPairPem {
    const now = this.clock.date();
    const known = this.issued.get(gateway);
    if (known && known.caPem === ca.certPem && known.renewAt > now.getTime()) return known.pair;
    const pair = issueControllerCertificate(ca, this.grant, validFor(now, VALIDITY_MS));
    this.issued.set(gateway, { caPem: ca.certPem, pair, renewAt: now.getTime() + (VALIDITY_MS * 2) / 3 });
    return pair;
  }

  forget(gateway: string): void {
    this.issued.delete(gateway);
  }
}
