/**
 * The gateway binds a port below 1024 as its pod runs it: uid/gid from the pod's security
 * context, no_new_privs (allowPrivilegeEscalation: false), a bounding set of exactly the
 * container's added capabilities, on a node binary that carries cap_net_bind_service as the
 * image does (Dockerfile: setcap on a copy of node). setpriv stands in for the container
 * runtime, which also execs the command directly with those settings. And the counter-proofs:
 * plain node cannot bind, a program in between loses the capability, and without
 * NET_BIND_SERVICE in the bounding set the kernel refuses to run the binary at all.
 * Needs root (setcap, setpriv): CI runs as root; elsewhere the suite is skipped.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, writeFileSync } from 'node:fs';
import { GATEWAY_COMMAND } from '../../src/controller/image.ts';
import { PROXY_CONTAINER_SECURITY, PROXY_POD_SECURITY } from '../../src/controller/gateway/desired.ts';
import { writeKeyPair } from '../../src/pki/files.ts';
import { createCA, issueServerCertificate } from '../../src/pki/issue.ts';
import { TempDir, hours } from '../helpers/fixture.ts';
import { firstFreePort } from '../helpers/ports.ts';
import { spawnWebgw } from '../helpers/processes.ts';

const root = process.getuid?.() === 0;

/** setpriv arguments for the pod's and the container's security contexts. */
function setprivFor(pod: typeof PROXY_POD_SECURITY, container: typeof PROXY_CONTAINER_SECURITY): string[] {
  const dropAll = container.capabilities?.drop?.includes('ALL') ?? false;
  const added = container.capabilities?.add ?? [];
  const bounding = [dropAll ? '-all' : '+all', ...added.map((c) => `+${c.toLowerCase()}`)].join(',');
  return [
    'setpriv',
    `--reuid=${pod.runAsUser}`,
    `--regid=${pod.runAsGroup}`,
    '--clear-groups',
    '--inh-caps=-all',
    `--bounding-set=${bounding}`,
    ...(container.allowPrivilegeEscalation ? [] : ['--no-new-privs']),
  ];
}

(root ? describe : describe.skip)('gateway privileges, as the rendered pod runs it', () => {
  const dir = new TempDir();
  const netBindNode = dir.file('node-net-bind');
  const plainNode = dir.file('node');
  let port = 0;

  beforeAll(async () => {
    expect(GATEWAY_COMMAND[0]).toMatch(/node-net-bind$/);
    copyFileSync(process.execPath, netBindNode);
    copyFileSync(process.execPath, plainNode);
    execFileSync('setcap', ['cap_net_bind_service=+ep', netBindNode]);
    const ca = createCA('privileges test CA', hours(1));
    await writeKeyPair(dir.path, 'ca', ca);
    await writeKeyPair(dir.path, 'tunnel', issueServerCertificate(ca, ['127.0.0.1'], hours(1)));
    port = await firstFreePort(
      Array.from({ length: 300 }, (_, i) => 700 + i),
      '127.0.0.1',
      'no free port in 700-999',
    );
    writeFileSync(
      dir.file('gateway.yaml'),
      [
        'tunnel: {address: 127.0.0.1, port: 0, caFile: ca.crt, certFile: tunnel.crt, keyFile: tunnel.key}',
        `listeners: {http: {address: 127.0.0.1, port: ${port}}}`,
      ].join('\n'),
    );
    // The scratch folder stands in for the pod's mounts: readable by the pod's user.
    for (const f of ['', 'ca.crt', 'tunnel.crt', 'tunnel.key', 'gateway.yaml', 'node-net-bind', 'node'])
      chmodSync(dir.file(f), f.endsWith('.key') ? 0o644 : 0o755);
  });

  afterAll(() => dir.remove());

  const run = (launch: string[]) =>
    spawnWebgw(['gateway', '--config', dir.file('gateway.yaml')], { WEBGW_LOG_LEVEL: 'info' }, { launch });

  it(`binds a port below 1024 as uid ${PROXY_POD_SECURITY.runAsUser} with only NET_BIND_SERVICE`, async () => {
    const gateway = run([...setprivFor(PROXY_POD_SECURITY, PROXY_CONTAINER_SECURITY), netBindNode]);
    try {
      const ready = await gateway.waitForLog((l) => l.msg === 'HTTP listener ready', 15_000);
      expect(ready.address).toBe(`127.0.0.1:${port}`);
      const status = execFileSync('cat', [`/proc/${gateway.proc.pid}/status`], { encoding: 'utf8' });
      expect(status).toMatch(new RegExp(`Uid:\\s+${PROXY_POD_SECURITY.runAsUser}\\s`));
      expect(status).toMatch(/NoNewPrivs:\s+1/);
      expect(status).toMatch(/CapBnd:\s+0000000000000400/); // CAP_NET_BIND_SERVICE (10) only
    } finally {
      await gateway.stop();
    }
  });

  it('cannot bind it on plain node (the capability is what allows it)', async () => {
    const gateway = run([...setprivFor(PROXY_POD_SECURITY, PROXY_CONTAINER_SECURITY), plainNode]);
    const failure = await gateway.waitForLog((l) => /EACCES|permission denied/i.test(JSON.stringify(l)), 15_000);
    expect(JSON.stringify(failure)).toMatch(new RegExp(String(port)));
    await gateway.stop();
  });

  it('cannot bind it through a program in between (why the capable node is the command itself)', async () => {
    const setpriv = setprivFor(PROXY_POD_SECURITY, PROXY_CONTAINER_SECURITY);
    const gateway = run([...setpriv, '/bin/sh', '-c', 'exec "$0" "$@"', netBindNode]);
    await gateway.waitForLog((l) => /EACCES|permission denied/i.test(JSON.stringify(l)), 15_000);
    await gateway.stop();
  });

  it('does not run at all when the container drops NET_BIND_SERVICE too', () => {
    const noCaps = { ...PROXY_CONTAINER_SECURITY, capabilities: { drop: ['ALL'], add: [] } };
    const r = spawnSync(
      setprivFor(PROXY_POD_SECURITY, noCaps)[0]!,
      [...setprivFor(PROXY_POD_SECURITY, noCaps).slice(1), netBindNode, '--version'],
      { encoding: 'utf8' },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/Operation not permitted/);
  });
});
