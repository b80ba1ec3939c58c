/**
 * `webgw agent` as a long-running process: an Agent built from the config file, rebuilt when
 * that file changes (the controller adds a gateway, a route or a port; on Kubernetes the
 * credential Secret holding agent.yaml is updated in place). An invalid new config is logged and
 * the running agent keeps serving. The old agent drains before the new one starts, because both
 * would need the same admin port; other replicas and gateways carry the traffic meanwhile.
 */
import { systemClock, type Clock } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import { FileWatcher } from '../common/file-watcher.ts';
import { Lifecycle } from '../common/lifecycle.ts';
import type { Logger } from '../common/log.ts';
import { Agent } from './agent.ts';
import { loadAgentConfig } from './config.ts';

export interface ReloadingAgentOptions {
  configFile: string;
  logger: Logger;
  clock?: Clock;
  pollMs?: number;
  drainMs?: number;
}

export class ReloadingAgent {
  private readonly opts: ReloadingAgentOptions;
  private agent: Agent | undefined;
  private watcher: FileWatcher | undefined;
  private reloading: Promise<void> = Promise.resolve();
  private readonly life = new Lifecycle();

  constructor(opts: ReloadingAgentOptions) {
    this.opts = opts;
  }

  async start(): Promise<void> {
    // Watch first: a change that lands while we load is then seen again (a harmless extra
    // reload) instead of missed.
    this.watcher = new FileWatcher({
      files: [this.opts.configFile],
      pollMs: this.opts.pollMs ?? 10_000,
      clock: this.opts.clock ?? systemClock,
      onChange: () => {
        this.reloading = this.reloading.then(() => this.reload());
      },
    });
    await this.watcher.start();
    const config = await loadAgentConfig(this.opts.configFile);
    this.agent = new Agent(config, { logger: this.opts.logger });
    await this.agent.start();
  }

  close(timeoutMs = 10_000): Promise<void> {
    return this.life.close(async () => {
      this.watcher?.close();
      await this.reloading;
      await this.agent?.close(timeoutMs);
    });
  }

  destroy(): void {
    this.life.destroy(() => {
      this.watcher?.close();
      this.agent?.destroy();
    });
  }

  private async reload(): Promise<void> {
    if (this.life.stopping) return;
    let config;
    try {
      config = await loadAgentConfig(this.opts.configFile);
    } catch (err) {
      this.opts.logger.error('new agent config is invalid; keeping the running one', { err: describeError(err) });
      return;
    }
    this.opts.logger.info('agent config changed; restarting the agent with it');
    await this.agent?.close(this.opts.drainMs ?? 5000);
    if (this.life.stopping) return;
    this.agent = new Agent(config, { logger: this.opts.logger });
    await this.agent.start();
  }
}
