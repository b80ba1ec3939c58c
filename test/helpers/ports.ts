/** Ports for test listeners. */
/**
 * A port for a listener that binds 0.0.0.0 (the gateway's, as rendered): chosen below Linux's
 * ephemeral range (32768-60999), so no outgoing connection of a parallel test can hold it
 * between the probe and the bind.
 */
export async function freeWildcardPort(): Promise<number> {
  const { createServer } = await import('node:net');
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 24000 + Math.floor(Math.random() * 8000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '0.0.0.0', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port below the ephemeral range');
}
