// ESLint runs only the type-aware checks the compiler cannot make; layout is Prettier's, and
// everything else is left to review (STYLE.md), so the lint stays a list of bugs, not of tastes.
import { fileURLToPath } from 'node:url';
import tseslint from 'typescript-eslint';

export default [
  { ignores: ['**/dist/', '**/node_modules/', 'data/'] },
  {
    // Every TypeScript file belongs to one of the projects tsconfig.json references; the project
    // service finds each file's nearest tsconfig.json, as the editor does. Plain .js/.mjs scripts
    // have no types to check and get no rules.
    files: ['packages/*/src/**/*.ts', 'apps/*/src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: fileURLToPath(new URL('.', import.meta.url)) },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      // A switch over a union (an error code, a provisioner type, a revocation reason) must name
      // every member, so adding one makes each place that decides on it fail until it decides; a
      // `default:` counts as deciding.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // A promise nobody awaits loses its rejection (an unhandled rejection ends the process) and
      // its ordering; fire-and-forget must say so with `void` and handle its own errors. node:test's
      // describe/it/test register with the runner, which awaits them: their promise is the runner's.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] },
          ],
        },
      ],
    },
  },
];
