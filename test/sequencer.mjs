// Test files in path order, the same on every run and machine. Cluster tests share one control
// plane, so their order matters: test/cluster/chart-install.test.ts has failed when it ran after
// gateway-controller.test.ts (see the closing note of the session that added this).
import testSequencer from '@jest/test-sequencer';

export default class ByPath extends testSequencer {
  sort(tests) {
    return [...tests].sort((a, b) => a.path.localeCompare(b.path));
  }
}
