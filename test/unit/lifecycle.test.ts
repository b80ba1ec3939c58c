import { Lifecycle } from '../../src/common/lifecycle.ts';

const deferred = (): { promise: Promise<void>; resolve: () => void } => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

describe('Lifecycle (close drains once, destroy happens once)', () => {
  it('runs the drain once, synchronously, and gives every caller the same promise', async () => {
    const life = new Lifecycle();
    const gate = deferred();
    let drains = 0;
    const drain = (): Promise<void> => {
      drains++;
      return gate.promise;
    };
    const first = life.close(drain);
    expect(drains).toBe(1);
    expect(life.stopping).toBe(true);
    expect(life.close(drain)).toBe(first);
    gate.resolve();
    await first;
    expect(life.close(drain)).toBe(first);
    expect(drains).toBe(1);
  });

  it('destroy tears down once and settles a close still draining', async () => {
    const life = new Lifecycle();
    let teardowns = 0;
    const closing = life.close(() => new Promise<void>(() => {}));
    life.destroy(() => teardowns++);
    life.destroy(() => teardowns++);
    await expect(closing).resolves.toBeUndefined();
    expect(teardowns).toBe(1);
    expect(life.destroyed).toBe(true);
  });

  it('close after destroy does not drain', async () => {
    const life = new Lifecycle();
    life.destroy(() => {});
    let drained = false;
    await life.close(async () => {
      drained = true;
    });
    expect(drained).toBe(false);
  });

  it('a failing drain rejects close, and a teardown that throws still counts as destroyed', async () => {
    const life = new Lifecycle();
    await expect(life.close(() => Promise.reject(new Error('stuck')))).rejects.toThrow('stuck');
    const other = new Lifecycle();
    expect(() =>
      other.destroy(() => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(other.destroyed).toBe(true);
    expect(() => other.destroy(() => {})).not.toThrow();
  });
});
