/** Lines outsiders can cause are throttled per key, and the next line says how many were dropped. */
import { createLogger } from '../../src/common/log.ts';
import { LogThrottle } from '../../src/common/log-throttle.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

describe('LogThrottle', () => {
  it('logs one line per key and interval, then counts what it dropped', () => {
    const lines: Array<Record<string, unknown>> = [];
    const clock = new FakeClock();
    const throttle = new LogThrottle(
      createLogger({}, { sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }),
      clock,
      10_000,
    );
    for (let i = 0; i < 1000; i++) throttle.warn('untrusted', 'agent refused', { i });
    throttle.warn('expired', 'agent refused', { i: -1 });
    expect(lines.map((l) => [l.msg, l.i, l.suppressed])).toEqual([
      ['agent refused', 0, undefined],
      ['agent refused', -1, undefined],
    ]);
    clock.advance(10_000);
    throttle.warn('untrusted', 'agent refused', { i: 1000 });
    expect(lines.at(-1)).toMatchObject({ i: 1000, suppressed: 999 });
  });

  it('keeps its table bounded whatever the keys', () => {
    const lines: string[] = [];
    const clock = new FakeClock();
    const throttle = new LogThrottle(createLogger({}, { sink: (l) => lines.push(l) }), clock, 10_000);
    for (let i = 0; i < 100_000; i++) throttle.warn(`key ${i}`, 'x');
    expect((throttle as unknown as { last: Map<string, unknown> }).last.size).toBeLessThanOrEqual(1024);
    expect(lines).toHaveLength(100_000); // every new key logs once
  });
});
