/** Status writes are merge patches: fields that went away must be deleted, not kept. */
import { replacingMergePatch } from '../../src/controller/runtime/kube.ts';

describe('replacingMergePatch', () => {
  it.each<[string, unknown, unknown, unknown]>([
    ['no previous: the new value', undefined, { a: 1 }, { a: 1 }],
    ['a dropped member becomes null', { a: 1, certificate: { names: ['x'] } }, { a: 1 }, { a: 1, certificate: null }],
    ['nested objects too', { r: { desired: 1, ready: 1 } }, { r: { desired: 2 } }, { r: { desired: 2, ready: null } }],
    ['arrays are replaced whole', { list: [{ a: 1 }, { b: 2 }] }, { list: [{ a: 1 }] }, { list: [{ a: 1 }] }],
    ['an object replacing a value', { a: 'x' }, { a: { b: 1 } }, { a: { b: 1 } }],
  ])('%s', (_what, previous, next, patch) => {
    expect(replacingMergePatch(previous, next)).toEqual(patch);
  });
});
