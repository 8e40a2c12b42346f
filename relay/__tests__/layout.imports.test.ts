// The rooms and the one-way flow: every import points at the same layer or one before it, no two files import each other
// (directly or round a circle), every advisory lock key comes from the registry, and no source file passes 300 lines.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PRUNE_LOCK, RENDER_LOCK, TICKER_LOCK } from '../../client/shared/lock-keys.js';
import { repoRoot } from './support/cli-process.js';

/**
 * The layers, first to last, as data flows: a file may import its own layer and the ones above it in this list, never one
 * below. `client/shared` is the neutral room (leaves every layer may import); the rest of `client/` is the browser's side,
 * which imports only `client/`, and which no server layer imports.
 */
const LAYERS: ReadonlyArray<readonly [layer: string, prefixes: readonly string[]]> = (
  ['shared: client/shared/', 'db: db/', 'dev cluster: db/cluster/', 'operations: relay/ops/', 'server: relay/server/',
   'feed: relay/feed/', 'routing: relay/routing/', 'presence: relay/presence/', 'edge: relay/edge/', 'console: relay/console/',
   'wiring: relay/relay.ts', 'commands: relay/cli/', 'entry points: relay/cli.ts relay/index.ts', 'client: client/']
).map((entry) => {
  const [layer, prefixes] = entry.split(': ') as [string, string];
  return [layer, prefixes.split(' ')] as const;
});

/** The layer of a product file (the longest matching prefix), or undefined for tests, the test kit, bench and examples. */
export function layerOf(file: string): number | undefined {
  if (/(^|\/)__tests__\//.test(file) || file.startsWith('db/testing/')) return undefined;
  let best: { index: number; length: number } | undefined;
  LAYERS.forEach(([, prefixes], index) => {
    for (const p of prefixes) if (file.startsWith(p) && (!best || p.length > best.length)) best = { index, length: p.length };
  });
  return best?.index;
}

/** Why `from` may not import `to`, or undefined when it may. */
export function wrongWay(from: string, to: string): string | undefined {
  const [a, b] = [layerOf(from), layerOf(to)];
  if (a === undefined || b === undefined) return undefined;
  const name = (i: number) => LAYERS[i]![0];
  if (a === LAYERS.length - 1 && !to.startsWith('client/')) return `the client imports ${name(b)}`;
  if (b > a) return `${name(a)} imports ${name(b)}, a later layer`;
  return undefined;
}

/** The circles of a graph (strongly connected sets of more than one file, or a file importing itself). */
export function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const set: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        set.push(w);
      } while (w !== v);
      if (set.length > 1 || graph.get(v)?.includes(v)) found.push(set.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(path.join(repoRoot, dir))) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const rel = `${dir}/${name}`;
    if (statSync(path.join(repoRoot, rel)).isDirectory()) walk(rel, out);
    else out.push(rel);
  }
  return out;
}

const sources = ['db', 'relay', 'client', 'bench', 'examples', 'migrations'].flatMap((d) => walk(d));
const code = sources.filter((f) => /\.(ts|tsx)$/.test(f));

/** The repository files a file imports by relative path (static, type-only and dynamic imports alike). */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(repoRoot, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)(['"])(\.{1,2}\/[^'"]+)\1/gm)) {
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[2]!));
    const candidates = [target.replace(/\.js$/, '.ts'), target.replace(/\.js$/, '.tsx'), target];
    const hit = candidates.find((c) => sources.includes(c));
    if (hit) out.push(hit);
  }
  return out;
}

const graph = new Map(code.map((f) => [f, importsOf(f)] as const));

describe('the import graph', () => {
  it('finds a wrong-way import and a circle when there is one (the checks can fail)', () => {
    expect(wrongWay('db/ticker/ticker.ts', 'relay/ops/log.ts')).toMatch(/db imports operations/);
    expect(wrongWay('relay/routing/router.ts', 'relay/edge/upgrade.ts')).toMatch(/routing imports edge/);
    expect(wrongWay('relay/edge/upgrade.ts', 'relay/routing/router.ts')).toBeUndefined();
    expect(wrongWay('client/relay-client.ts', 'db/ticker/ticker.ts')).toMatch(/the client imports db/);
    expect(wrongWay('relay/routing/filter.ts', 'client/subscription.ts')).toMatch(/imports client/);
    expect(wrongWay('relay/routing/filter.ts', 'client/shared/protocol.ts')).toBeUndefined();
    expect(circles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]))).toEqual([['a', 'b', 'c']]);
    expect(circles(new Map([['a', ['b']], ['b', []]]))).toEqual([]);
  });

  it('has every product file in a layer', () => {
    const product = code.filter((f) => /^(db|relay|client)\//.test(f) && !/__tests__\//.test(f) && !f.startsWith('db/testing/'));
    expect(product.length).toBeGreaterThan(50);
    expect(product.filter((f) => layerOf(f) === undefined)).toEqual([]);
  });

  it('runs one way: no import from a later layer into an earlier one', () => {
    const wrong = [...graph].flatMap(([from, tos]) => tos.map((to) => [from, to, wrongWay(from, to)] as const)).filter(([, , why]) => why);
    expect(wrong.map(([from, to, why]) => `${from} → ${to}: ${why}`)).toEqual([]);
  });

  it('has no circle between files, tests and benchmarks included', () => {
    expect(circles(graph)).toEqual([]);
  });
});

describe('one place for each shared fact', () => {
  it('takes every advisory lock key from client/shared/lock-keys.ts, the migrations included', () => {
    const keys = [TICKER_LOCK, PRUNE_LOCK, RENDER_LOCK].map((k) => k.join(', '));
    expect(new Set(keys).size).toBe(keys.length);
    const strays = sources
      .filter((f) => /\.(ts|tsx|sql)$/.test(f) && f !== 'client/shared/lock-keys.ts')
      .flatMap((f) => [...readFileSync(path.join(repoRoot, f), 'utf8').matchAll(/advisory_(?:xact_)?lock\((\d+), (\d+)\)/g)].map((m) => [f, `${m[1]}, ${m[2]}`] as const))
      .filter(([, key]) => !keys.includes(key));
    expect(strays).toEqual([]);
    const render = readFileSync(path.join(repoRoot, 'migrations/1796400000002_render.sql'), 'utf8');
    expect(render).toContain(`pg_advisory_xact_lock(${RENDER_LOCK.join(', ')})`);
    // the key's first half appears nowhere else as a literal
    const literal = sources.filter((f) => /\.(ts|tsx)$/.test(f) && f !== 'client/shared/lock-keys.ts' && /\b7242\b/.test(readFileSync(path.join(repoRoot, f), 'utf8')));
    expect(literal).toEqual([]);
  });
});

describe('file size', () => {
  it('keeps every source file outside tests and bench/ to 300 lines', () => {
    const long = sources
      .filter((f) => /\.(ts|tsx|sql|html)$/.test(f) && !f.startsWith('bench/') && !/(^|\/)__tests__\//.test(f) && !f.startsWith('db/testing/'))
      .map((f) => [f, readFileSync(path.join(repoRoot, f), 'utf8').split('\n').length - 1] as const)
      .filter(([, lines]) => lines > 300);
    expect(long).toEqual([]);
  });
});
