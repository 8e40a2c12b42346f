// bench:size: the client's gzip size and its budget, as an application's bundler sees `pgrelay/client`.
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Plugin } from 'esbuild';
import ts from 'typescript';
import type { Benchmark } from '../lib/benchmark.js';
import { titles, writeSection } from '../lib/results.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Gzip budgets in bytes: what a dashboard pays to go live. The core's was 3072 until presence (issue 14), whose
 * `client.presence` adds 184 B; with presence and the SSE transport it must stay within 4 KiB (issue 25).
 */
export const budgets = { core: 4096, tanstack: 1536 } as const;

export interface SizeResult {
  name: keyof typeof budgets;
  minified: number;
  gzip: number;
  budget: number;
  ok: boolean;
}

/**
 * Writes what `npm run build` publishes for `client/` (each module transpiled on its own with the build's compiler
 * options: `isolatedModules` makes that the same output as tsc's) into `<dir>/node_modules/pgrelay`, with the
 * package's own package.json, so that `pgrelay/client` resolves through its `exports` as in an application.
 */
async function installClient(dir: string): Promise<string> {
  const pkgDir = path.join(dir, 'node_modules', 'pgrelay');
  const out = path.join(pkgDir, 'dist', 'client');
  await mkdir(out, { recursive: true });
  await writeFile(path.join(pkgDir, 'package.json'), await readFile(path.join(root, 'package.json')));
  const configFile = path.join(root, 'relay', 'tsconfig.build.json');
  const { config } = ts.readConfigFile(configFile, ts.sys.readFile);
  const { options } = ts.parseJsonConfigFileContent(config, ts.sys, path.dirname(configFile));
  // ES module output, as the package's "type": "module" makes NodeNext emit for these files
  const compilerOptions = { ...options, module: ts.ModuleKind.ESNext, declaration: false, sourceMap: false, noEmit: false };
  for (const file of await readdir(path.join(root, 'client'), { recursive: true })) {
    if (!file.endsWith('.ts') || file.endsWith('.d.ts') || file.split(path.sep).includes('__tests__')) continue;
    const source = await readFile(path.join(root, 'client', file), 'utf8');
    const { outputText } = ts.transpileModule(source, { compilerOptions, fileName: file });
    await mkdir(path.dirname(path.join(out, file)), { recursive: true });
    await writeFile(path.join(out, file.replace(/\.ts$/, '.js')), outputText);
  }
  return pkgDir;
}

async function bundle(dir: string, specifier: string, plugins: Plugin[] = []) {
  const r = await build({
    stdin: { contents: `export * from '${specifier}';`, resolveDir: dir, loader: 'js' },
    absWorkingDir: dir,
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    // ES2020, the syntax Vite's default targets (before Vite 7) and most app bundlers still emit: anything newer in the
    // build (class fields, logical assignment) is lowered, with the helpers that costs, as in the user's bundle
    target: 'es2020',
    external: ['@tanstack/query-core', 'react'],
    write: false,
    metafile: true,
    plugins,
    logLevel: 'silent',
  });
  const code = r.outputFiles[0]!.contents;
  return { minified: code.length, gzip: gzipSync(code, { level: 9 }).length, inputs: Object.keys(r.metafile.inputs).map((p) => path.resolve(dir, p)) };
}

/**
 * Measures both bundles. The adapter is measured on its own code: every module of the core bundle (from the core
 * build's metafile) is left external, since an app that uses the adapter already pays for the core.
 */
export async function measureClientSize(): Promise<SizeResult[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgrelay-size-'));
  try {
    await installClient(dir);
    const core = await bundle(dir, 'pgrelay/client');
    const coreModules = new Set(core.inputs);
    const coreExternal: Plugin = {
      name: 'core-external',
      setup(b) {
        b.onResolve({ filter: /^\.\.?\// }, (args) => {
          const resolved = path.resolve(args.resolveDir, args.path);
          return coreModules.has(resolved) ? { path: resolved, external: true } : undefined;
        });
      },
    };
    const adapter = await bundle(dir, 'pgrelay/client/tanstack', [coreExternal]);
    return [
      { name: 'core', minified: core.minified, gzip: core.gzip, budget: budgets.core, ok: core.gzip <= budgets.core },
      { name: 'tanstack', minified: adapter.minified, gzip: adapter.gzip, budget: budgets.tanstack, ok: adapter.gzip <= budgets.tanstack },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The client's size and its budget, as a user's bundler sees `pgrelay/client`: the package's build of client/ installed under
 * node_modules, `export * from 'pgrelay/client'` bundled by esbuild for browsers (ES2020), minified, gzipped; the same for
 * the TanStack adapter without the core it imports. `npm run bench:size` (and `npm run bench`) writes RESULTS.md section 5;
 * client/__tests__/bundle.size.test.ts holds the budgets.
 */
export const size: Benchmark = {
  name: 'size',
  title: "The client's gzip size (core, TanStack adapter) against its budget, as an app's bundler sees it (section 5)",
  usage: '(no flags)',
  async run(_flags, ctx) {
    const results = await measureClientSize();
    const lines = results.map((r) => `${r.name.padEnd(9)} ${String(r.minified).padStart(6)} B minified  ${String(r.gzip).padStart(5)} B gzip  budget ${r.budget} B  ${r.ok ? 'pass' : 'FAIL'}`);
    process.stdout.write(`${lines.join('\n')}\n`);
    if (results.some((r) => !r.ok)) throw new Error('the client is over its size budget (client/__tests__/bundle.size.test.ts fails too)');
    await writeSection('clientSize', [
      titles.clientSize!,
      '',
      `- Command: \`${ctx.command}\`; date ${new Date().toISOString()}. As a user's bundler sees the package: the build of \`client/\` installed as \`node_modules/pgrelay\`, \`export * from 'pgrelay/client'\` bundled by esbuild (browser, ES2020, ESM, minified), gzip level 9; the adapter counted without the core client it imports. Budgets held by \`client/__tests__/bundle.size.test.ts\`.`,
      '',
      '```',
      ...lines,
      '```',
    ].join('\n'));
  },
};
