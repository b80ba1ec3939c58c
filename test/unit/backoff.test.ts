/** Reconnect backoff (common/backoff.ts): the bounds of each delay, doubling, the cap, reset. */
import { Backoff } from '../../src/common/backoff.ts';

describe('Backoff', () => {
  it.each([
    [0, [50, 100, 200, 400, 800, 1000, 1000]],
    [1, [100, 200, 400, 800, 1600, 2000, 2000]],
  ])('with random() = %d the delays are base/2 .. base, doubling up to the cap', (r, expected) => {
    const b = new Backoff({ initialMs: 100, maxMs: 2000, random: () => r });
    expect(Array.from({ length: 7 }, () => b.next())).toEqual(expected);
    expect(b.attempts).toBe(7);
  });

  it('never exceeds the cap, even after many attempts (no overflow)', () => {
    const b = new Backoff({ initialMs: 250, maxMs: 15_000, random: () => 0.999 });
    for (let i = 0; i < 100; i++) expect(b.next()).toBeLessThanOrEqual(15_000);
  });

  it('starts over after reset', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 10_000, random: () => 1 });
    b.next();
    b.next();
    b.reset();
    expect([b.attempts, b.next()]).toEqual([0, 100]);
  });
});
