import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { get } from '../helpers/http-client.ts';
import { repoRoot } from '../helpers/processes.ts';

describe('npm start (the local demo)', () => {
  it('serves its page through the tunnel and stops cleanly on Ctrl-C', async () => {
    // The README's command, with a free port so the test never collides with a running demo.
    const npm = spawn('npm', ['start', '--silent', '--', '--port', '0'], {
      cwd: repoRoot,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    try {
      npm.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
      npm.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
      const deadline = Date.now() + 30_000;
      while (!/Ctrl-C stops it/.test(stdout)) {
        if (Date.now() > deadline || npm.exitCode !== null)
          throw new Error(`demo did not start:\n${stdout}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const url = /open\s+(http:\/\/hello\.localhost:(\d+)\/)/.exec(stdout);
      expect(url).not.toBeNull();
      const port = Number(url![2]);
      const res = await get(port, 'hello.localhost');
      expect(res.status).toBe(200);
      expect(res.body).toContain('Hello from a private app');
      expect(res.body).toContain('X-Forwarded-For): <code>127.0.0.1</code>');
      const echoPort = Number(/nc 127\.0\.0\.1 (\d+)/.exec(stdout)![1]);
      const { connect } = await import('node:net');
      const socket = connect(echoPort, '127.0.0.1');
      socket.end('echo through the tunnel');
      const chunks: Buffer[] = [];
      for await (const c of socket) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('echo through the tunnel');

      process.kill(-npm.pid!, 'SIGINT');
      const [code, signal] = await once(npm, 'exit');
      // The demo drained and said so; npm itself ends by the forwarded SIGINT, as with a real Ctrl-C.
      expect(stdout).toContain('demo stopped');
      expect(code === 0 || signal === 'SIGINT').toBe(true);
      expect(stderr).not.toMatch(/"level":"error"|Error:/);
    } finally {
      // Never leave a demo running behind a failed test.
      if (npm.exitCode === null && npm.signalCode === null) process.kill(-npm.pid!, 'SIGKILL');
    }
  }, 60_000);
});
