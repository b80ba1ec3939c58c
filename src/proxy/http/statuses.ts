/** The gateway's own answers to HTTP requests: the status for an error, and what it says. */
import { isWebgwError } from '../../common/errors.ts';
import { HttpRequestError } from '../../common/http/request-parser.ts';

export function statusForError(err: unknown): number {
  if (err instanceof HttpRequestError) return err.status;
  if (isWebgwError(err, 'WEBGW_ERR_NO_ROUTE')) return 404;
  if (isWebgwError(err, 'WEBGW_ERR_NO_AGENT')) return 503;
  if (isWebgwError(err, 'WEBGW_ERR_TIMEOUT')) return 504;
  return 502;
}

export function messageForStatus(status: number, hostname: string): string {
  switch (status) {
    case 404:
      return `no service is exposed as ${hostname} on this gateway`;
    case 503:
      return `no agent is connected for ${hostname}`;
    case 504:
      return `the service behind ${hostname} did not answer in time`;
    default:
      return `the service behind ${hostname} failed to answer`;
  }
}
