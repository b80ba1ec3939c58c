// End-to-end tests move real bytes over loopback (64 MiB transfers, 1,000 streams).
jest.setTimeout(30_000);
