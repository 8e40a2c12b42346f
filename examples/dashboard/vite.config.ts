// Vite for the dashboard example: React's automatic JSX through esbuild, and the pgrelay client read from this repository's sources.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('../..', import.meta.url));
const source = (file: string) => fileURLToPath(new URL(`../../client/${file}.ts`, import.meta.url));

export default defineConfig({
  root: here,
  esbuild: { jsx: 'automatic' },
  resolve: {
    // Inside this repository the public names point at client/*.ts, so no build is needed. A copy in your own app
    // drops this block: `npm install pgrelay` provides the same names.
    alias: [
      { find: /^pgrelay\/client$/, replacement: source('index') },
      { find: /^pgrelay\/client\/tanstack$/, replacement: source('tanstack') },
      { find: /^pgrelay\/client\/react$/, replacement: source('react') },
    ],
  },
  server: { fs: { allow: [repo] } },
});
