/**
 * `webgw agent` as a long-running process: an Agent built from the config file, rebuilt when
 * that file changes (the controller adds a gateway, a route or a port; on Kubernetes the
 * credential Secret holding agent.yaml is updated in place). An invalid new config is logged and
 * the running agent keeps serving.
 *
 * Make before break: the new agent starts and dials while the old one still serves; the old one
 * drains only once the new one has a tunnel (or after `handoverMs`). Every pod of a Deployment
 * reads the same Secret, so draining first would take every replica out at about the same time.
 * The admin listener and the metrics belong to this object, not to one generation of agent, so
 * /readyz stays up across the swap and counters carry on.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import { AdminServer } from '../common/admin-server.ts';
import { systemClock, type Clock } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import { FileWatcher } from '../common/file-watcher.ts';
import { Lifecycle } from '../common/lifecycle.ts';
import type { Logger } from '../common/log.ts';
import { Agent } from './agent.ts';
import { loadAgentConfig, type AgentConfig } from './config.ts';
import { createAgentMetrics, type AgentMetrics } from './metrics.ts';

export interface ReloadingAgentOptions {
  configFile: string;
  logger: Logger;
  clock?: Clock;
  pollMs?: number;
  /** How long the old agent's streams may take to finish after the swap. */
  drainMs?: number;
  /** How long the new agent may take to get a tunnel before the old one drains anyway. */
  handoverMs?: number;
}

const HANDOVER_POLL_MS = 100;

export class ReloadingAgent {
  private readonly opts: ReloadingAgentOptions;
  private readonly clock: Clock;
  private readonly registry = new Registry();
  private readonly metrics: AgentMetrics = createAgentMetrics(this.registry);
  private agent: Agent | undefined;
  private admin: AdminServer | undefined;
  private adminConfig: string | undefined;
  private watcher: FileWatcher | undefined;
  private reloading: Promise<void> = Promise.resolve();
  private readonly life = new Lifecycle();

  constructor(opts: ReloadingAgentOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    collectDefaultMetrics({ register: this.registry, prefix: 'webgw_agent_' });
  }

  async start(): Promise<void> {
    // Watch first: a change that lands while we load is then seen again (a harmless extra
    // reload) instead of missed.
    this.watcher = new FileWatcher({
      files: [this.opts.configFile],
      pollMs: this.opts.pollMs ?? 10_000,
      clock: this.clock,
      onChange: () => {
        this.reloading = this.reloading.then(() => this.reload());
      },
    });
    await this.watcher.start();
    const config = await loadAgentConfig(this.opts.configFile);
    this.agent = this.build(config);
    await this.agent.start();
    if (config.admin) {
      this.admin = new AdminServer({
        ...config.admin,
        registry: this.registry,
        notReadyReason: () => this.notReadyReason(),
      });
      this.adminConfig = JSON.stringify(config.admin);
      await this.admin.start();
    }
  }

  close(timeoutMs = 10_000): Promise<void> {
    return this.life.close(async () => {
      this.watcher?.close();
      await this.reloading;
      await this.agent?.close(timeoutMs);
      await this.admin?.close();
    });
  }

  destroy(): void {
    this.life.destroy(() => {
      this.watcher?.close();
      this.agent?.destroy();
      void this.admin?.close();
    });
  }

  private notReadyReason(): string | undefined {
    if (this.life.stopping) return 'shutting down';
    return this.agent ? this.agent.notReadyReason() : 'starting';
  }

  private build(config: AgentConfig): Agent {
    return new Agent(config, {
      logger: this.opts.logger,
      clock: this.clock,
      registry: this.registry,
      metrics: this.metrics,
    });
  }

  /** Never rejects: a failed reload is logged and the running agent keeps serving. */
  private async reload(): Promise<void> {
    if (this.life.stopping) return;
    let config;
    try {
      config = await loadAgentConfig(this.opts.configFile);
    } catch (err) {
      this.opts.logger.error('new agent config is invalid; keeping the running one', { err: describeError(err) });
      return;
    }
    if (this.admin && JSON.stringify(config.admin) !== this.adminConfig) {
      this.opts.logger.warn('the admin listener keeps its address until the agent restarts');
    }
    this.opts.logger.info('agent config changed; starting an agent with it before the old one drains');
    const next = this.build(config);
    try {
      await next.start();
    } catch (err) {
      next.destroy();
      this.opts.logger.error('the agent with the new config did not start; keeping the running one', {
        err: describeError(err),
      });
      return;
    }
    if (config.gateways.length > 0) await this.untilServing(next);
    const previous = this.agent;
    this.agent = next; // close() waits for this reload, then closes `next`
    await previous?.close(this.opts.drainMs ?? 5000);
  }

  /**
   * Resolves when `next` has a tunnel, or when waiting protects nothing (the running agent has
   * none either, or we are stopping), or after `handoverMs`.
   */
  private async untilServing(next: Agent): Promise<void> {
    const deadline = this.clock.now() + (this.opts.handoverMs ?? 15_000);
    while (next.connectedSessions === 0 && (this.agent?.connectedSessions ?? 0) > 0) {
      if (this.life.stopping || this.clock.now() >= deadline) return;
      await new Promise<void>((resolve) => this.clock.setTimeout(resolve, HANDOVER_POLL_MS));
    }
  }
}
