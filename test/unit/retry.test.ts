import { WebgwError } from '../../src/common/errors.ts';
import { mayRetry } from '../../src/proxy/http/retry.ts';

const stale = new WebgwError('WEBGW_ERR_BACKEND', 'tunnel stream closed before the response was complete');
const timeout = new WebgwError('WEBGW_ERR_TIMEOUT', 'no response');

describe('retrying a request on a fresh stream', () => {
  it.each([
    [
      'a GET on a reused stream the backend closed',
      { reused: true, error: stale, method: 'GET', hasBody: false, attempt: 1 },
      true,
    ],
    ['the same on a fresh stream', { reused: false, error: stale, method: 'GET', hasBody: false, attempt: 1 }, false],
    [
      'a timeout (504, not a stale stream)',
      { reused: true, error: timeout, method: 'GET', hasBody: false, attempt: 1 },
      false,
    ],
    ['a POST (not safe to repeat)', { reused: true, error: stale, method: 'POST', hasBody: false, attempt: 1 }, false],
    [
      'a request with a body (cannot be read again)',
      { reused: true, error: stale, method: 'OPTIONS', hasBody: true, attempt: 1 },
      false,
    ],
    ['HEAD on the second attempt', { reused: true, error: stale, method: 'HEAD', hasBody: false, attempt: 2 }, true],
    ['the third attempt', { reused: true, error: stale, method: 'GET', hasBody: false, attempt: 3 }, false],
  ])('%s', (_what, attempt, expected) => {
    expect(mayRetry(attempt)).toBe(expected);
  });
});
