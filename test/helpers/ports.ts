/** Ports for test listeners. */
/**
 * A port for a listener that binds 0.0.0.0 (the gateway's, as rendered): chosen below Linux's
 * ephemeral range (32768-60999), so no outgoing connection of a parallel test can hold it
 * between the probe and the bind.
 */
export async function freeWildcardPort(): Promise<number> {
  const candidates = Array.from({ length: 50 }, () => 24000 + Math.floor(Math.random() * 8000));
  return firstFreePort(candidates, '0.0.0.0', 'no free port below the ephemeral range');
}

/** The first of `candidates` that `address` can bind now. */
export async function firstFreePort(candidates: readonly number[], address: string, failure: string): Promise<number> {
  const { createServer } = await import('node:net');
  for (const port of candidates) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, address, () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error(failure);
}
