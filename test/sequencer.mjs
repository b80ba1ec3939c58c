// Test files in path order, the same on every run and machine. Cluster tests share one control
// plane, so their order matters: test/cluster/chart-install.test.ts has failed when it ran after
// gateway-controller.test.ts. What leaks between the two is not found yet (issue 14, part 8); until
// it is, the order is pinned.
import testSequencer from '@jest/test-sequencer';

export default class ByPath extends testSequencer {
  sort(tests) {
    return [...tests].sort((a, b) => a.path.localeCompare(b.path));
  }
}
