// Where the relay finds the console's files (relay/console/assets/): from the package root, wherever the loader sits; the
// sources' TypeScript compiled when loaded, the build's JavaScript as tsc emitted it, and `npm run build` ships the rest.
import { execSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { consoleAssets, loadConsoleFiles, packageRoot } from '../console/console-page.js';
import { repoRoot } from './support/cli-process.js';

const assets = path.join(repoRoot, 'relay', 'console', 'assets');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgrelay-console-assets-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Writes `files` (path → text) under `root`. */
function tree(root: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    writeFileSync(path.join(root, name), text);
  }
}

describe('the console files', () => {
  it('from the sources: relay/console/assets, every TypeScript module compiled, importing only modules that are served', () => {
    expect(consoleAssets()).toEqual({ dir: assets, fromSources: true });
    const files = loadConsoleFiles();
    const modules = readdirSync(assets).filter((f) => f.endsWith('.ts')).map((f) => f.replace(/\.ts$/, '.js'));
    expect([...files.scripts.keys()].sort()).toEqual(modules.sort());
    expect(files.page.body.toString()).toContain('<script type="module" src="/console/main.js">');
    expect(files.scripts.has('main.js')).toBe(true);
    let imported = 0;
    for (const [name, script] of files.scripts) {
      const text = script.body.toString();
      expect(script.contentType, name).toBe('text/javascript; charset=utf-8');
      // a module from outside this folder (client/protocol.ts) may give types only: the relay would not serve it
      const imports = [...text.matchAll(/^(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]/gm)].map((m) => m[1] ?? m[2]);
      for (const specifier of imports) {
        expect(specifier, `${name} imports ${specifier}`).toMatch(/^\.\/[a-z-]+\.js$/);
        expect(files.scripts.has(specifier!.slice(2)), `${name} imports ${specifier}`).toBe(true);
        imported++;
      }
    }
    expect(imported).toBeGreaterThan(10);
  });

  it('from the build: dist/relay/console/assets of the package the loader is in, wherever it sits; tsc\'s JavaScript without its source map', () => {
    // an application with pgrelay installed; the loader somewhere under dist/relay (it may move)
    tree(tmp, {
      'package.json': '{"name": "app"}',
      'node_modules/pgrelay/package.json': '{"name": "pgrelay"}',
      'node_modules/pgrelay/dist/relay/console/assets/index.html': '<!doctype html><title>built</title>',
      'node_modules/pgrelay/dist/relay/console/assets/favicon.svg': '<svg xmlns="http://www.w3.org/2000/svg"></svg>',
      'node_modules/pgrelay/dist/relay/console/assets/main.js': "import { ui } from './dom.js';\nui.go();\n//# sourceMappingURL=main.js.map",
      'node_modules/pgrelay/dist/relay/console/assets/main.js.map': '{}',
      'node_modules/pgrelay/dist/relay/console/assets/main.d.ts': 'export {};\n',
      'node_modules/pgrelay/dist/relay/console/assets/dom.js': 'export const ui = {};\n//# sourceMappingURL=dom.js.map\n',
    });
    const root = path.join(tmp, 'node_modules', 'pgrelay');
    for (const loader of ['dist/relay/console/console-page.js', 'dist/relay/console/files/loader.js']) {
      const from = pathToFileURL(path.join(root, loader));
      expect(packageRoot(from)).toBe(root);
      expect(consoleAssets(from)).toEqual({ dir: path.join(root, 'dist', 'relay', 'console', 'assets'), fromSources: false });
      const files = loadConsoleFiles(from);
      expect(files.page.body.toString()).toBe('<!doctype html><title>built</title>');
      expect(files.favicon.contentType).toBe('image/svg+xml');
      expect(Object.fromEntries([...files.scripts].map(([name, f]) => [name, f.body.toString()]))).toEqual({
        'dom.js': 'export const ui = {};\n',
        'main.js': "import { ui } from './dom.js';\nui.go();\n",
      });
    }
    // no pgrelay package above: said so, not a file missing somewhere else
    expect(() => packageRoot(pathToFileURL(path.join(tmp, 'lib', 'x.js')))).toThrow(/no pgrelay package.json above/);
    // a package without its console: named
    rmSync(path.join(root, 'dist', 'relay', 'console', 'assets', 'index.html'));
    expect(() => consoleAssets(pathToFileURL(path.join(root, 'dist/relay/console/console-page.js')))).toThrow(/index\.html\) are missing from this installation/);
  });

  it('`npm run build` copies every file that is not TypeScript beside the compiled modules, and the package ships dist only', () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { files: string[]; scripts: Record<string, string> };
    const [compile, copy] = pkg.scripts.build!.split(' && ');
    expect(compile).toBe('tsc -p relay/tsconfig.build.json');
    // the copy step, run in a folder of its own holding the console's sources and what tsc would have emitted
    const work = path.join(tmp, 'build');
    cpSync(assets, path.join(work, 'relay', 'console', 'assets'), { recursive: true });
    tree(work, { 'dist/relay/console/assets/main.js': 'export {};\n' });
    execSync(copy!, { cwd: work, stdio: 'pipe' });
    const sources = readdirSync(assets);
    expect(readdirSync(path.join(work, 'dist', 'relay', 'console', 'assets')).sort()).toEqual(['main.js', ...sources.filter((f) => !f.endsWith('.ts'))].sort());
    expect(sources).toEqual(expect.arrayContaining(['index.html', 'favicon.svg', 'main.ts']));
    expect(pkg.files).toEqual(['dist', 'migrations']);
  });
});
