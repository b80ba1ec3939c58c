// Fault tests wait out dead-peer detection and slow links.
jest.setTimeout(120_000);
