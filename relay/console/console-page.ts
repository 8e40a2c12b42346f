// The console's static files (relay/console/assets/): read once, served with an ETag and cache headers that suit each.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** One static file as the relay serves it. */
export interface StaticFile {
  readonly body: Buffer;
  readonly contentType: string;
  /** A strong validator: the hash of the body. */
  readonly etag: string;
  readonly cacheControl: string;
}

/** The page, its icon, and the page's script modules by file name (`main.js`, …), which it loads from /console/. */
export interface ConsoleFiles {
  readonly page: StaticFile;
  readonly favicon: StaticFile;
  readonly scripts: ReadonlyMap<string, StaticFile>;
}

/** The installation `from` (a file URL) belongs to: the nearest folder above it whose package.json is pgrelay's. */
export function packageRoot(from: string | URL): string {
  for (let dir = path.dirname(fileURLToPath(from)); ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'pgrelay') return dir;
    if (path.dirname(dir) === dir) throw new Error(`no pgrelay package.json above ${fileURLToPath(from)}`);
  }
}

/**
 * Where the console's files are, from the package root (not from this file's folder, which may move). Run from the
 * sources (this module is .ts, under tsx or vitest): relay/console/assets, whose TypeScript the relay compiles when it
 * loads. Run from the build: dist/relay/console/assets, where `npm run build` compiled the scripts and copied the rest.
 */
export function consoleAssets(from: string | URL = import.meta.url): { dir: string; fromSources: boolean } {
  const fromSources = fileURLToPath(from).endsWith('.ts');
  const dir = path.join(packageRoot(from), ...(fromSources ? [] : ['dist']), 'relay', 'console', 'assets');
  if (!existsSync(path.join(dir, 'index.html'))) throw new Error(`the console files (${dir}/index.html) are missing from this installation`);
  return { dir, fromSources };
}

/** The sources' scripts compiled once per process and folder (every relay a test file starts in-process shares them). */
const compiled = new Map<string, Map<string, Buffer>>();

/** The script modules by the name the browser asks for: from the sources each .ts compiled alone (tsc checks the types), from the build tsc's .js. */
function readScripts(dir: string, fromSources: boolean): Map<string, Buffer> {
  const cached = compiled.get(dir);
  if (cached) return cached;
  const scripts = new Map<string, Buffer>();
  if (fromSources) {
    // esbuild is a development dependency: only a run from the sources loads it, never the build. Its sync API runs in
    // a worker thread that keeps esbuild's own process: both are stopped once the files are compiled.
    const esbuild = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
    try {
      for (const name of readdirSync(dir).filter((f) => f.endsWith('.ts')).sort()) {
        const { code } = esbuild.transformSync(readFileSync(path.join(dir, name), 'utf8'), { loader: 'ts', format: 'esm', target: 'es2022', sourcefile: name });
        scripts.set(name.replace(/\.ts$/, '.js'), Buffer.from(code));
      }
    } finally {
      void esbuild.stop();
    }
    compiled.set(dir, scripts);
  } else {
    for (const name of readdirSync(dir).filter((f) => f.endsWith('.js')).sort()) {
      // tsc's source map names sources the relay does not serve: no reference to it
      scripts.set(name, Buffer.from(readFileSync(path.join(dir, name), 'utf8').replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n')));
    }
  }
  return scripts;
}

function file(body: Buffer, contentType: string, cacheControl: string): StaticFile {
  return { body, contentType, cacheControl, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/**
 * The page and its scripts revalidate on every load (`no-cache` + ETag: a relay upgrade shows at once, an unchanged file
 * costs a 304); the icon is cached for a day. `from`: where to look from (tests), else this module.
 */
export function loadConsoleFiles(from: string | URL = import.meta.url): ConsoleFiles {
  const { dir, fromSources } = consoleAssets(from);
  const scripts = new Map<string, StaticFile>();
  for (const [name, body] of readScripts(dir, fromSources)) scripts.set(name, file(body, 'text/javascript; charset=utf-8', 'no-cache'));
  return {
    page: file(readFileSync(path.join(dir, 'index.html')), 'text/html; charset=utf-8', 'no-cache'),
    favicon: file(readFileSync(path.join(dir, 'favicon.svg')), 'image/svg+xml', 'public, max-age=86400'),
    scripts,
  };
}
