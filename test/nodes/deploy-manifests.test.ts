/**
 * The plain manifests (`kubectl apply -k deploy/`) on real nodes, with the image built here set
 * by an overlay (as a GitOps repository would): the controllers start and serve the webhook, and
 * `kubectl delete -k` removes it all. Runs before operator.test.ts (path order), which installs
 * the chart into the same namespace.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { repoRoot } from '../cluster/plane.ts';
import { eventually, kubectl, kubectlOk } from '../cluster/helpers.ts';
import { pods } from './helpers.ts';
import { IMAGES } from './topology.ts';

describe('kubectl apply -k deploy/ on real nodes', () => {
  const overlay = mkdtempSync(join(tmpdir(), 'webgw-overlay-'));
  afterAll(() => rmSync(overlay, { recursive: true, force: true }));

  it('starts the controllers from the image built here, serves the webhook, and deletes cleanly', async () => {
    const [newName, newTag] = IMAGES.webgw.split(':');
    writeFileSync(
      join(overlay, 'kustomization.yaml'),
      `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [${relative(overlay, join(repoRoot(), 'deploy'))}]
images: [{name: ghcr.io/webgw/webgw, newName: ${newName}, newTag: ${newTag}}]
`,
    );
    await kubectlOk(['apply', '-k', overlay]);
    await kubectlOk(['rollout', 'status', 'deployment/webgw-controller', '-n', 'webgw-system', '--timeout=180s']);
    const controllers = await pods('webgw-system', 'app.kubernetes.io/component=controller');
    expect(controllers.length).toBeGreaterThan(0);
    expect(controllers.every((p) => p.ready && p.restarts === 0)).toBe(true);
    await eventually(
      async () =>
        (
          await kubectlOk([
            'get',
            'mutatingwebhookconfigurations',
            '-o',
            'jsonpath={.items[*].webhooks[*].clientConfig.caBundle}',
          ])
        ).trim().length > 100,
      60_000,
      'the webhook caBundle',
    );

    await kubectlOk(['delete', '-k', overlay, '--wait=true', '--timeout=180s']);
    expect((await kubectl(['get', 'namespace', 'webgw-system'])).code).not.toBe(0);
    expect(await kubectlOk(['get', 'crds', '-o', 'name'])).not.toMatch(/webgw\.io/);
  });
});
