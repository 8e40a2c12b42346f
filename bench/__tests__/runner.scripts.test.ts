// One shape of benchmark: every benchmark the runner knows has its `npm run bench:<name>` script, and `--help` lists it.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../relay/__tests__/support/cli-process.js';
import { benchmarks } from '../benchmarks/index.js';

const scripts = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

describe('the benchmark runner', () => {
  it('has an npm script for every benchmark, and every bench script goes through bench/run.ts', () => {
    expect(benchmarks.length).toBeGreaterThan(10);
    for (const b of benchmarks) expect(scripts[`bench:${b.name}`], b.name).toBe(`node --import tsx bench/run.ts ${b.name}`);
    const benchScripts = Object.entries(scripts).filter(([name]) => name === 'bench' || name === 'chaos' || name.startsWith('bench:'));
    expect(benchScripts.filter(([, command]) => !command.startsWith('node --import tsx bench/run.ts '))).toEqual([]);
    // no bench script names a benchmark the runner does not know
    const known = new Set(['all', ...benchmarks.map((b) => b.name)]);
    expect(benchScripts.map(([, command]) => command.split(' ').at(-1)).filter((name) => !known.has(name!))).toEqual([]);
  });

  it('lists every benchmark in one --help, starting nothing', () => {
    const help = execFileSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--help'], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
    for (const b of benchmarks) expect(help, b.name).toMatch(new RegExp(`^  ${b.name} +${b.title.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'));
  });
});
