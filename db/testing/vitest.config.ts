// Vitest configuration (kept here so the top level holds only what STYLE.md lists): `npm test` points at it.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('../..', import.meta.url));

export default defineConfig({
  root,
  test: {
    include: ['db/**/*.test.ts', 'relay/**/*.test.ts', 'client/**/*.test.ts', 'bench/**/*.test.ts', 'examples/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dist/**'],
    globalSetup: ['db/testing/global-setup.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 4, minForks: 1 } },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    typecheck: { enabled: true, include: ['**/*.test-d.ts'], tsconfig: 'tsconfig.json' },
  },
});
