/**
 * A network namespace for the agent, joined to the host by a veth pair, with test addresses in
 * 198.18.0.0/15 only: the host side holds one address per gateway and one for the backend, so
 * iptables rules in the namespace can cut the agent from one gateway and not the other, or drop
 * a share of its packets. Needs root; everything is removed by remove() (and the namespace's
 * rules go with it).
 */
import { execFileSync } from 'node:child_process';

export interface AgentNetns {
  name: string;
  /** The agent's own address. */
  agentAddress: string;
  /** Host-side addresses: one per gateway, then the backend's. */
  hostAddresses: string[];
  /** Runs a command inside the namespace (argv; throws with its stderr on failure). */
  exec(args: string[]): string;
  /** iptables inside the namespace. */
  iptables(args: string[]): void;
  remove(): void;
}

const run = (args: string[]): string => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', stdio: 'pipe' });

export function netnsAvailable(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    run(['ip', '-V']);
    run(['iptables', '--version']);
    return true;
  } catch {
    return false;
  }
}

/** `index` keeps concurrent runs apart: 198.18.<index>.0/24. */
export function createAgentNetns(index: number, hostAddressCount: number): AgentNetns {
  const name = `wgfault${index}`;
  const host = `wgf${index}h`;
  const peer = `wgf${index}a`;
  const net = `198.18.${index}`;
  /** The namespace and the host end of the pair, where they exist (the peer end goes with them). */
  const remove = (): void => {
    for (const args of [
      ['ip', 'netns', 'del', name],
      ['ip', 'link', 'del', host],
    ]) {
      try {
        run(args);
      } catch {
        /* not there */
      }
    }
  };
  remove(); // what an interrupted run left
  run(['ip', 'netns', 'add', name]);
  run(['ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
  run(['ip', 'link', 'set', peer, 'netns', name]);
  const hostAddresses = Array.from({ length: hostAddressCount }, (_, i) => `${net}.${i + 1}`);
  for (const a of hostAddresses) run(['ip', 'addr', 'add', `${a}/24`, 'dev', host]);
  run(['ip', 'link', 'set', host, 'up']);
  const agentAddress = `${net}.100`;
  const exec = (args: string[]): string => run(['ip', 'netns', 'exec', name, ...args]);
  exec(['ip', 'addr', 'add', `${agentAddress}/24`, 'dev', peer]);
  exec(['ip', 'link', 'set', peer, 'up']);
  exec(['ip', 'link', 'set', 'lo', 'up']);
  return {
    name,
    agentAddress,
    hostAddresses,
    exec,
    iptables: (args) => void exec(['iptables', '-w', ...args]),
    remove,
  };
}
