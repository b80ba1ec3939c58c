import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const FOLDERS = ['common', 'tunnel', 'pki', 'crds', 'proxy', 'agent', 'controller', 'cli', 'demo'];

/** One no-restricted-imports block per folder of src/: the other folders it may not import. */
function layers(allowed) {
  return Object.entries(allowed).map(([folder, may]) => ({
    files: [`src/${folder}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: FOLDERS.filter((f) => f !== folder && !may.includes(f)).flatMap((f) => [
                `../${f}/*`,
                `../../${f}/*`,
                `../../../${f}/*`,
              ]),
              message: `src/${folder} may import only ${['itself', ...may].join(', ')} (docs/architecture.md, the layers).`,
            },
          ],
        },
      ],
    },
  }));
}

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.property.name='pipe']",
          message:
            'Use stream.pipeline or the relay helper: bare .pipe() leaks on errors (docs/architecture.md, Code conventions).',
        },
      ],
    },
  },
  {
    // Typed rules for the product: a promise nobody handles on a request path can end the process
    // (issue 12: one malformed chunked request took the shared gateway down).
    files: ['src/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // The pipe rule again (a rule set here replaces the one above for these files), and errors
      // from the one catalog: every error of ours has a code (common/errors.ts, docs/errors.md).
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.property.name='pipe']",
          message:
            'Use stream.pipeline or the relay helper: bare .pipe() leaks on errors (docs/architecture.md, Code conventions).',
        },
        {
          selector: "NewExpression[callee.name='Error']",
          message: 'Throw a WebgwError with a code from common/errors.ts (docs/errors.md lists them).',
        },
      ],
    },
  },
  // The layers (docs/architecture.md, "The folders and what they may import"): tunnel and pki on
  // common; proxy and agent on those; controller on crds, pki and common; cli and demo on anything.
  ...layers({
    common: [],
    tunnel: ['common'],
    pki: ['common'],
    crds: ['common', 'pki'],
    proxy: ['common', 'tunnel', 'pki'],
    agent: ['common', 'tunnel', 'pki'],
    controller: ['common', 'crds', 'pki'],
  }),
  {
    files: ['scripts/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../test/*'],
              message: 'scripts/ may not import the test harness (scripts/tool-cache.ts is what both share).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
