import { readFileSync } from 'node:fs';
import { GATEWAY_COMMAND, IMAGE_CLI, IMAGE_NODE, IMAGE_NODE_OPTIONS } from '../../src/controller/image.ts';

describe('the image layout the pod specs rely on', () => {
  const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');

  it('runs every process with the NODE_OPTIONS the code documents', () => {
    expect(dockerfile).toMatch(new RegExp(`^ENV .*NODE_OPTIONS=${IMAGE_NODE_OPTIONS}(\\s|$)`, 'm'));
  });

  it('has the entrypoint and the gateway command at the paths the controller renders', () => {
    expect(dockerfile).toContain(`ENTRYPOINT ["${IMAGE_NODE}", "${IMAGE_CLI}"]`);
    expect(dockerfile).toContain(`cp ${IMAGE_NODE} ${GATEWAY_COMMAND[0]}`);
  });
});
