/**
 * `npm run generate`: writes the chart's generated files from src/ and deploy/ from the chart
 * (scripts/generated-files.ts). deploy/ needs helm: run `npm run cluster:build` once first.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { binDir } from './tool-cache.ts';
import { chartFiles, deployFiles, repoRoot } from './generated-files.ts';

function write(files: Map<string, string>): void {
  for (const [path, content] of files) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
    process.stdout.write(`wrote ${relative(repoRoot, path)}\n`);
  }
}

write(chartFiles());
const helm = join(binDir(), 'helm');
if (!existsSync(helm)) {
  process.stderr.write(`no helm at ${helm}: run \`npm run cluster:build\` first, then generate again for deploy/\n`);
  process.exit(1);
}
write(deployFiles(helm));
