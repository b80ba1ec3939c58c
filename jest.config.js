// Five projects: `unit` (pure functions, no sockets), `e2e` (real loopback sockets on port 0),
// `faults` (loopback links degraded by Toxiproxy),
// `cluster` (a real control plane) and `nodes` (a real kubelet and containerd; README, Tests).
// TypeScript is transformed by @swc/jest; the sources are ESM with explicit `.ts` imports,
// which Node 24 also runs directly (type stripping), so tests and `npm start` run the same files.
const transform = {
  '^.+\\.ts$': [
    '@swc/jest',
    {
      jsc: { parser: { syntax: 'typescript' }, target: 'es2023' },
      module: { type: 'commonjs' },
    },
  ],
};

export default {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
      slowTestThreshold: 20,
      setupFilesAfterEnv: ['<rootDir>/test/e2e/jest-setup.ts'],
    },
    {
      // Faults injected into real loopback links (Toxiproxy, built by npm run cluster:build).
      displayName: 'faults',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/faults/**/*.test.ts'],
      slowTestThreshold: 60,
      setupFilesAfterEnv: ['<rootDir>/test/faults/jest-setup.ts'],
    },
    {
      // A real control plane (test/cluster/plane.ts), started once per run.
      displayName: 'cluster',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/cluster/**/*.test.ts'],
      globalSetup: '<rootDir>/test/cluster/global-setup.ts',
      globalTeardown: '<rootDir>/test/cluster/global-teardown.ts',
      // Each file leaves no webgw objects behind, so files pass in any order (isolation.ts).
      setupFilesAfterEnv: ['<rootDir>/test/cluster/jest-setup.ts', '<rootDir>/test/cluster/isolation.ts'],
      slowTestThreshold: 60,
    },
    {
      // Real nodes (kubelet, containerd, kube-proxy in network namespaces) around a control
      // plane of their own: run alone (npm run test:nodes), as root, after npm run nodes:build.
      displayName: 'nodes',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/nodes/**/*.test.ts'],
      globalSetup: '<rootDir>/test/nodes/global-setup.ts',
      globalTeardown: '<rootDir>/test/nodes/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/cluster/jest-setup.ts'],
      slowTestThreshold: 300,
    },
  ],
};
