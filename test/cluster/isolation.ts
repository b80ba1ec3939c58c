/**
 * Every cluster test file leaves the shared control plane without webgw objects, so no file
 * depends on what ran before it (issue 14 part 8). The leak this closes: a Gateway left by one
 * file (crds.test.ts's `minimal`) was adopted by the next file's controller, which made proxy
 * workloads for it in its own namespace; chart-install.test.ts then waited for that namespace to
 * empty, and failed whenever it ran later than crds.test.ts. Gateways are cluster-scoped and
 * every controller reconciles all of them, so each file must find none but its own.
 * Registered for the cluster project only (jest.config.js); errors are ignored because a file may
 * run before the CRDs exist.
 */
import { kubectl } from './helpers.ts';

afterAll(async () => {
  await kubectl(['delete', 'exposedservices.webgw.io', '--all', '--all-namespaces', '--wait=true', '--timeout=60s']);
  await kubectl(['delete', 'gateways.webgw.io', '--all', '--wait=true', '--timeout=60s']);
}, 150_000);
