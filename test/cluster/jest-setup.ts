// Cluster tests wait on real controllers (scheduling, garbage collection, restarts).
jest.setTimeout(180_000);
