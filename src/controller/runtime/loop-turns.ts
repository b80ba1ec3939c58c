/**
 * One reconcile step per turn of the event loop, across every controller: workers that yield
 * with a bare setImmediate all resume in the same check phase, so eight reconciles that each
 * sign a certificate or plan claims ran back to back as one stall of hundreds of milliseconds
 * (issue 15). Waiters here are released one per turn, in order; between two of them the loop
 * polls for I/O (probes, watch events, lease renewals), so the longest stall is the longest
 * single step, not the sum of all of them.
 */
const waiting: Array<() => void> = [];
let scheduled = false;

function releaseOne(): void {
  scheduled = false;
  waiting.shift()?.();
  // Scheduled from inside the check phase: runs on the next turn, after the poll phase.
  if (waiting.length > 0) schedule();
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(releaseOne);
}

/** Resolves on a later turn of the event loop, after the steps that asked before. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    schedule();
  });
}
