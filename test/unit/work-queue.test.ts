import { WorkQueue } from '../../src/controller/runtime/work-queue.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

describe('work queue', () => {
  it('deduplicates keys that are waiting', async () => {
    const q = new WorkQueue();
    q.add('ns/a');
    q.add('ns/a');
    q.add('ns/b');
    expect(q.depth).toBe(2);
    expect(await q.get()).toBe('ns/a');
    expect(await q.get()).toBe('ns/b');
  });

  it('never hands out a key twice at once; a re-add while processing runs after done()', async () => {
    const q = new WorkQueue();
    q.add('k');
    const key = await q.get();
    q.add('k');
    expect(q.depth).toBe(0);
    q.done(key!);
    expect(q.depth).toBe(1);
    expect(await q.get()).toBe('k');
  });

  it('wakes a waiting worker', async () => {
    const q = new WorkQueue();
    const next = q.get();
    q.add('late');
    expect(await next).toBe('late');
  });

  it('backs off per key exponentially up to the cap, and forget() resets', () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000, clock });
    expect([1, 2, 3, 4, 5].map(() => q.addRateLimited('k'))).toEqual([100, 200, 400, 800, 1000]);
    q.forget('k');
    expect(q.addRateLimited('k')).toBe(100);
  });

  it('delays rate-limited keys on the injected clock', () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ baseDelayMs: 100, clock });
    q.addRateLimited('k');
    clock.advance(99);
    expect(q.depth).toBe(0);
    clock.advance(1);
    expect(q.depth).toBe(1);
  });

  it('close releases waiting workers', async () => {
    const q = new WorkQueue();
    const next = q.get();
    q.close();
    expect(await next).toBeUndefined();
  });

  it('hands out no more keys once closed, though some are queued (the next leader does them)', async () => {
    const q = new WorkQueue();
    for (const k of ['a', 'b', 'c']) q.add(k);
    expect(await q.get()).toBe('a');
    q.close();
    expect(await q.get()).toBeUndefined();
    q.done('a');
    expect(await q.get()).toBeUndefined();
  });
});
