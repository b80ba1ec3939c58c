/**
 * V8 heap tuning for the data-plane processes (gateway, agent, demo).
 *
 * Every socket read is a fresh ArrayBuffer, which V8 counts as external memory; by default each
 * 64 MiB of it starts a full mark-compact, however small the JS heap. At 2 Gbit/s through the
 * tunnel that was 10-20 full collections per second per process, and their marking threads took
 * about a third of all CPU (perf, bench/profile-webgw.ts). Accounting external memory in the
 * global heap limit instead lets the limit grow with the traffic: in the same run, single-stream
 * iperf3 went from 1.81 to 2.60 Gbit/s (median of 3) and CPU from 6.9 to 4.4 s per GB.
 * Memory stays bounded by the tunnel's own windows and buffers, not by this setting.
 */
import { setFlagsFromString } from 'node:v8';

export function tuneHeapForDataPlane(): void {
  setFlagsFromString('--external-memory-accounted-in-global-limit');
}
