/**
 * SIGTERM/SIGINT handling shared by the long-running commands: the first signal drains
 * (`close()`), a second one or the drain deadline stops at once (`destroy()`).
 */
import type { Closable } from '../common/lifecycle.ts';
import type { Logger } from '../common/log.ts';

export function runUntilSignal(component: Closable, log: Logger, drainMs = 15_000): Promise<void> {
  // Components unref their timers (library-friendly), so an agent waiting out a reconnect
  // backoff, or with nothing configured yet, would otherwise let the process exit.
  const keepAlive = setInterval(() => {}, 1 << 30);
  return new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn('second signal: stopping now', { signal });
        component.destroy();
        resolve();
        return;
      }
      stopping = true;
      log.info('draining', { signal, deadlineMs: drainMs });
      const deadline = setTimeout(() => {
        log.warn('drain deadline passed: stopping now');
        component.destroy();
        resolve();
      }, drainMs);
      component.close(drainMs).then(
        () => {
          clearTimeout(deadline);
          resolve();
        },
        () => {
          component.destroy();
          resolve();
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }).finally(() => clearInterval(keepAlive));
}
