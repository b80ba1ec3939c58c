/** A burst of triggers becomes one run, after the delay from the first; later bursts run again. */
import { Coalesced } from '../../src/controller/runtime/coalesce.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

describe('Coalesced', () => {
  it('runs once per burst, delayMs after its first trigger', () => {
    const clock = new FakeClock();
    let runs = 0;
    const sweep = new Coalesced(clock, 500, () => runs++);
    for (let i = 0; i < 400; i++) {
      sweep.trigger();
      sweep.trigger();
      clock.advance(1);
    }
    // 400 ms of triggers: not yet.
    expect(runs).toBe(0);
    clock.advance(100);
    expect(runs).toBe(1);
    clock.advance(10_000);
    expect(runs).toBe(1);
    sweep.trigger();
    clock.advance(500);
    expect(runs).toBe(2);
  });

  it('runs nothing once cancelled', () => {
    const clock = new FakeClock();
    let runs = 0;
    const sweep = new Coalesced(clock, 500, () => runs++);
    sweep.trigger();
    sweep.cancel();
    clock.advance(1000);
    expect(runs).toBe(0);
  });
});
