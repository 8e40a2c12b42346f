// The client's size budget: bundles the core client and the TanStack adapter with esbuild, gzips them, and checks each against its budget.
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Plugin } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Gzip budgets in bytes: what a dashboard pays to go live. The core's was 3072 until presence (issue 14), whose
 * `client.presence` adds 184 B; it grew by 192 B, which leaves the core as much room as it had before. The SSE transport
 * (issue 14 allows it 1 KiB) takes it to 3264 + 1024.
 */
export const budgets = { core: 4288, tanstack: 1536 } as const;

export interface SizeResult {
  name: keyof typeof budgets;
  minified: number;
  gzip: number;
  budget: number;
  ok: boolean;
}

async function bundle(entry: string, plugins: Plugin[] = []) {
  const r = await build({
    entryPoints: [entry],
    absWorkingDir: root,
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    external: ['@tanstack/query-core', 'react'],
    write: false,
    metafile: true,
    plugins,
    logLevel: 'silent',
  });
  const code = r.outputFiles[0]!.contents;
  return { minified: code.length, gzip: gzipSync(code, { level: 9 }).length, inputs: Object.keys(r.metafile.inputs) };
}

/**
 * Measures both bundles. The adapter is measured on its own code: every module that is part of the core
 * bundle (found from the core build's metafile) is left external, since an app that uses the adapter
 * already pays for the core.
 */
export async function measureClientSize(): Promise<SizeResult[]> {
  const core = await bundle('client/index.ts');
  const coreModules = new Set(core.inputs.map((p) => `${root}${p}`));
  const ownCodeOnly: Plugin = {
    name: 'core-external',
    setup(b) {
      b.onResolve({ filter: /^\.\.?\// }, (args) => {
        if (args.kind == 'entry-point') return undefined;
        const path = fileURLToPath(new URL(args.path.replace(/\.js$/, '.ts'), `file://${args.resolveDir}/`));
        return coreModules.has(path) ? { path: args.path, external: true } : undefined;
      });
    },
  };
  const adapter = await bundle('client/tanstack.ts', [ownCodeOnly]);
  return [
    { name: 'core', minified: core.minified, gzip: core.gzip, budget: budgets.core, ok: core.gzip <= budgets.core },
    { name: 'tanstack', minified: adapter.minified, gzip: adapter.gzip, budget: budgets.tanstack, ok: adapter.gzip <= budgets.tanstack },
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const results = await measureClientSize();
  for (const r of results) {
    console.log(`${r.name.padEnd(9)} ${String(r.minified).padStart(6)} B minified  ${String(r.gzip).padStart(5)} B gzip  budget ${r.budget} B  ${r.ok ? 'pass' : 'FAIL'}`);
  }
  if (results.some((r) => !r.ok)) process.exitCode = 1;
}
