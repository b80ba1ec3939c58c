/**
 * GitOps quiet: `kubectl apply -k deploy/` installs the chart's defaults; after the controller
 * (under deploy/'s ServiceAccount) has reconciled — webhook Secret and caBundle written, CRDs
 * checked — re-applying changes nothing and `kubectl diff` (client- and server-side) reports no
 * drift on anything the manifests own, the webhook configuration included.
 */
import { join } from 'node:path';
import { createLogger } from '../../src/common/log.ts';
import { Manager } from '../../src/controller/manager.ts';
import { WEBHOOK_WORKER, eventually, freeWildcardPort, kubeConfigAs, kubectl, kubectlOk } from './helpers.ts';

const DEPLOY = join(__dirname, '../../deploy');
const NS = 'webgw-system';

describe('GitOps: deploy/ stays quiet after the controller reconciles', () => {
  let manager: Manager | undefined;

  beforeAll(async () => {
    await kubectlOk(['apply', '-k', DEPLOY]);
    manager = new Manager({
      kc: await kubeConfigAs('webgw-controller', NS),
      namespace: NS,
      image: 'webgw:gitops',
      leaderElection: true,
      manageCrds: true,
      identity: 'gitops-test',
      logger: createLogger({ test: 'gitops' }, { level: 'error' }),
      webhook: {
        address: '127.0.0.1',
        port: await freeWildcardPort(),
        hosts: ['127.0.0.1'],
        configurationName: 'webgw-injector',
        workerFile: WEBHOOK_WORKER,
      },
    });
    await manager.start();
    await eventually(async () => manager!.isLeader, 20_000, 'leadership');
    await eventually(
      async () =>
        (
          await kubectlOk([
            'get',
            'mutatingwebhookconfiguration',
            'webgw-injector',
            '-o',
            'jsonpath={.webhooks[0].clientConfig.caBundle}',
          ])
        ).trim() !== '',
      30_000,
      'the caBundle',
    );
  });

  afterAll(async () => {
    await manager?.close();
    // Not the namespace and not the CRDs: other tests share them.
    await kubectl(['delete', '-f', join(DEPLOY, 'webgw.yaml'), '--wait=false']);
  });

  /** resourceVersion of every object in deploy/: equal before and after means nothing was written. */
  async function versions(): Promise<string> {
    return kubectlOk([
      'get',
      '-k',
      DEPLOY,
      '-o',
      'jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion}{"\\n"}{end}',
    ]);
  }

  it('client-side: kubectl diff reports no drift and re-applying writes nothing', async () => {
    const diff = await kubectl(['diff', '-k', DEPLOY]);
    expect(diff.stdout).toBe('');
    expect(diff.code).toBe(0);
    const before = await versions();
    // kubectl reports the PodDisruptionBudget "configured" on every apply (its selector's patch
    // strategy is replace, so the patch always carries it); the server writes nothing.
    await kubectlOk(['apply', '-k', DEPLOY]);
    expect(await versions()).toBe(before);
    expect(before.split('\n').length).toBeGreaterThan(10);
  });

  it('server-side: kubectl diff reports no drift and re-applying writes nothing', async () => {
    await kubectlOk(['apply', '--server-side', '--force-conflicts', '-k', DEPLOY]); // a pipeline that applies server-side
    const diff = await kubectl(['diff', '--server-side', '--force-conflicts', '-k', DEPLOY]);
    expect(diff.stdout).toBe('');
    expect(diff.code).toBe(0);
    const before = await versions();
    await kubectlOk(['apply', '--server-side', '--force-conflicts', '-k', DEPLOY]);
    expect(await versions()).toBe(before);
    // The controller's caBundle survives a pipeline's apply: the manifests do not own it.
    expect(
      (
        await kubectlOk([
          'get',
          'mutatingwebhookconfiguration',
          'webgw-injector',
          '-o',
          'jsonpath={.webhooks[0].clientConfig.caBundle}',
        ])
      ).trim(),
    ).not.toBe('');
  });
});
