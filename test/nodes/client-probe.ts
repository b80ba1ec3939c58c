/**
 * Runs inside the client namespace ("the Internet"), started by the real-node tests with
 * `ip netns exec client node test/nodes/client-probe.ts ...`:
 *
 *   tcp HOST PORT MESSAGE          connects, sends MESSAGE, prints what comes back before the close
 *   load URL HOST RATE             GET URL with Host: HOST, RATE new connections per second, until
 *                                  SIGTERM; then prints {sent, ok, failed, failures, p99Ms} as JSON
 *
 * Standalone on purpose (Node only): nothing of the product runs on the client side.
 */
import { request } from 'node:http';
import { connect } from 'node:net';

const [command, ...args] = process.argv.slice(2);

function tcp(host: string, port: number, message: string): void {
  const socket = connect({ host, port });
  const chunks: Buffer[] = [];
  socket.setTimeout(10_000, () => socket.destroy(new Error('timed out')));
  socket.on('connect', () => socket.end(message));
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('close', () => process.stdout.write(Buffer.concat(chunks)));
  socket.on('error', (err) => {
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 1;
  });
}

function load(url: string, host: string, rate: number): void {
  const stats = { sent: 0, ok: 0, failed: 0, failures: {} as Record<string, number>, p99Ms: 0 };
  const latencies: number[] = [];
  let inFlight = 0;
  let stopping = false;
  const fail = (reason: string): void => {
    stats.failed++;
    stats.failures[reason] = (stats.failures[reason] ?? 0) + 1;
  };
  const one = (): void => {
    stats.sent++;
    inFlight++;
    const started = performance.now();
    const req = request(url, { headers: { host }, agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) {
          stats.ok++;
          latencies.push(performance.now() - started);
        } else fail(`HTTP ${res.statusCode}`);
        done();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      fail(err.code ?? err.message);
      done();
    });
    req.end();
  };
  const done = (): void => {
    inFlight--;
    if (stopping && inFlight === 0) report();
  };
  const report = (): void => {
    latencies.sort((a, b) => a - b);
    stats.p99Ms = Math.round(latencies[Math.floor(latencies.length * 0.99)] ?? 0);
    process.stdout.write(`${JSON.stringify(stats)}\n`);
    process.exit(0);
  };
  const timer = setInterval(one, 1000 / rate);
  process.on('SIGTERM', () => {
    stopping = true;
    clearInterval(timer);
    if (inFlight === 0) report();
  });
}

if (command === 'tcp') tcp(args[0]!, Number(args[1]), args[2]!);
else if (command === 'load') load(args[0]!, args[1]!, Number(args[2]));
else {
  process.stderr.write('usage: client-probe.ts tcp HOST PORT MESSAGE | load URL HOST RATE\n');
  process.exitCode = 2;
}
