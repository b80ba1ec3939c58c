/** The error catalog (common/errors.ts) and its page (docs/errors.md) say the same, and errors carry their detail. */
import { readFileSync } from 'node:fs';
import { WebgwError, asError, errorCatalog } from '../../src/common/errors.ts';
import { HttpRequestError } from '../../src/common/http/request-parser.ts';
import { WebSocketProtocolError } from '../../src/tunnel/websocket/frames.ts';

describe('the error catalog', () => {
  it('is the table of docs/errors.md, row for row', () => {
    const page = readFileSync('docs/errors.md', 'utf8');
    const rows = [...page.matchAll(/^\| `(WEBGW_ERR_[A-Z_0-9]+)` \| (.*) \| (yes|no) \| (yes|no) \|$/gm)].map((m) => [
      m[1],
      m[2],
      m[3] === 'yes',
      m[4] === 'yes',
    ]);
    const catalog = Object.entries(errorCatalog).map(([code, e]) => [
      code,
      e.summary,
      e.retryable,
      (e as { anotherAgent?: boolean }).anotherAgent === true,
    ]);
    expect(rows).toEqual(catalog);
  });

  it('gives every error its code and the detail its caller answers with', () => {
    const refused = new WebgwError('WEBGW_ERR_STREAM_REFUSED', 'refused', { resetCode: 3 });
    expect([refused.anotherAgent, refused.retryable, refused.resetCode]).toEqual([true, true, 3]);
    expect(new WebgwError('WEBGW_ERR_TIMEOUT', 't').anotherAgent).toBe(false);
    const http = new HttpRequestError(431, 'head too large');
    expect([http instanceof WebgwError, http.code, http.status]).toEqual([true, 'WEBGW_ERR_HTTP_REQUEST', 431]);
    const ws = new WebSocketProtocolError(1009, 'message too big');
    expect([ws.code, ws.closeCode]).toEqual(['WEBGW_ERR_WEBSOCKET_PROTOCOL', 1009]);
    expect(asError('a string')).toMatchObject({ code: 'WEBGW_ERR_UNEXPECTED', message: 'a string' });
  });
});
