/**
 * The layout of the one webgw image (Dockerfile), for pod specs that name a program in it. The
 * image's entrypoint is `node /app/dist/cli/main.js` (the `webgw` CLI), so most containers pass
 * only `args`. The gateway binds ports below 1024 as a non-root user: it runs on a copy of node
 * that carries the file capability cap_net_bind_service, and that copy must be the container's
 * command itself. A capability-less program in between (a shell wrapper) would lose the
 * capability at its own exec, and under no_new_privs (allowPrivilegeEscalation: false) the next
 * exec could not regain it.
 */
export const IMAGE_CLI = '/app/dist/cli/main.js';
export const IMAGE_NODE = '/usr/local/bin/node';
export const IMAGE_NODE_NET_BIND = '/usr/local/bin/node-net-bind';

/**
 * NODE_OPTIONS of every process in the image (Dockerfile ENV). It caps V8's young generation:
 * on a node with much memory V8 lets it grow to 128 MiB per process, which a proxy with many
 * open connections pays in resident memory. Measured with 10,000 open streams (bench memory
 * scenario): 22.8 KiB per stream for gateway + agent by default, 17.3 KiB with 16 MiB
 * semi-spaces, 16.3 KiB with 8 MiB, which cost bulk throughput (iperf3 median 2.54 against 2.83
 * Gbit/s). The cap has to be given at start-up: setting the flag at run time has no effect.
 */
export const IMAGE_NODE_OPTIONS = '--max-semi-space-size=16';

/** The gateway container's command: the CLI on the node copy that may bind ports below 1024. */
export const GATEWAY_COMMAND = [IMAGE_NODE_NET_BIND, IMAGE_CLI];
