/**
 * The ACME answers a gateway holds: the PUT body is checked (table), answers are given only for
 * their hostname, expire, and their count is bounded (the oldest goes first).
 */
import { parseChallengeAnswer } from '../../src/common/acme-challenge.ts';
import { isWebgwError } from '../../src/common/errors.ts';
import { AcmeChallenges } from '../../src/proxy/acme-challenges.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const TOKEN = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0';
const THUMB = 'ZrHxb9u_W4zGp8XEnjLa1M8ixGm_JRXyZ8gXgH4-sbE';
const KEY_AUTH = `${TOKEN}.${THUMB}`;

describe('parseChallengeAnswer', () => {
  it.each([
    ['a good answer', TOKEN, { hostname: 'shop.example.com', keyAuthorization: KEY_AUTH }, undefined],
    ['a token too short', 'abc', { hostname: 'shop.example.com', keyAuthorization: `abc.${THUMB}` }, 'token'],
    ['a token with a slash', `${TOKEN}/x`, { hostname: 'shop.example.com', keyAuthorization: KEY_AUTH }, 'token'],
    [
      'a key authorization of another token',
      TOKEN,
      { hostname: 'shop.example.com', keyAuthorization: `${'A'.repeat(43)}.${THUMB}` },
      'keyAuthorization',
    ],
    [
      'a key authorization with no thumbprint',
      TOKEN,
      { hostname: 'shop.example.com', keyAuthorization: `${TOKEN}.` },
      'keyAuthorization',
    ],
    ['a wildcard', TOKEN, { hostname: '*.example.com', keyAuthorization: KEY_AUTH }, 'wildcard'],
    ['no hostname', TOKEN, { keyAuthorization: KEY_AUTH }, 'strings'],
    ['a number for a hostname', TOKEN, { hostname: 7, keyAuthorization: KEY_AUTH }, 'strings'],
  ])('%s', (_what, token, body, error) => {
    const run = () => parseChallengeAnswer(token, JSON.stringify(body));
    if (error === undefined) expect(run()).toEqual(body);
    else expect(run).toThrow(error);
  });

  it.each(['', 'not json', 'null', '[]', '"text"'])('refuses the body %j with its own error code', (text) => {
    let caught: unknown;
    try {
      parseChallengeAnswer(TOKEN, text);
    } catch (err) {
      caught = err;
    }
    expect(isWebgwError(caught, 'WEBGW_ERR_ACME_CHALLENGE')).toBe(true);
  });
});

describe('AcmeChallenges', () => {
  it('answers only for the hostname it was given for, normalized', () => {
    const store = new AcmeChallenges(new FakeClock());
    store.put(TOKEN, { hostname: 'Shop.Example.com.', keyAuthorization: KEY_AUTH });
    expect(store.answer(TOKEN, 'shop.example.com')).toBe(KEY_AUTH);
    expect(store.answer(TOKEN, 'other.example.com')).toBeUndefined();
    expect(store.answer('x'.repeat(43), 'shop.example.com')).toBeUndefined();
  });

  it('refuses a hostname that is not one', () => {
    const store = new AcmeChallenges(new FakeClock());
    expect(() => store.put(TOKEN, { hostname: 'bad host', keyAuthorization: KEY_AUTH })).toThrow('invalid hostname');
    expect(store.size).toBe(0);
  });

  it('forgets an answer at its expiry, and on delete', () => {
    const clock = new FakeClock();
    const store = new AcmeChallenges(clock, 10, 60_000);
    store.put(TOKEN, { hostname: 'a.example.com', keyAuthorization: KEY_AUTH });
    clock.advance(59_999);
    expect(store.answer(TOKEN, 'a.example.com')).toBe(KEY_AUTH);
    clock.advance(1);
    expect(store.answer(TOKEN, 'a.example.com')).toBeUndefined();
    store.put(TOKEN, { hostname: 'a.example.com', keyAuthorization: KEY_AUTH });
    expect(store.delete(TOKEN)).toBe(true);
    expect(store.answer(TOKEN, 'a.example.com')).toBeUndefined();
  });

  it('holds at most its bound, evicting the oldest answer', () => {
    const store = new AcmeChallenges(new FakeClock(), 3);
    const token = (i: number) => `${String(i).padStart(3, '0')}${TOKEN.slice(3)}`;
    for (let i = 0; i < 5; i++)
      store.put(token(i), { hostname: `h${i}.example.com`, keyAuthorization: `${token(i)}.${THUMB}` });
    expect(store.size).toBe(3);
    expect(store.answer(token(0), 'h0.example.com')).toBeUndefined();
    expect(store.answer(token(1), 'h1.example.com')).toBeUndefined();
    expect(store.answer(token(4), 'h4.example.com')).toBe(`${token(4)}.${THUMB}`);
  });
});
