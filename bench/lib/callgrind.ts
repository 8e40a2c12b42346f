// Postgres under callgrind: a PostgreSQL 15 cluster prepared once (migrated, plus the caller's setup), then each run in
// single-user mode on a fresh copy of it, counting the instructions the backend executed. Counts do not depend on what
// else the machine is doing, so small differences show on a shared machine.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../../client/shared/free-port.js';
import { migrate } from '../../db/migrate.js';
import { describeMachine, machine } from './machine.js';
import { writeSection } from './results.js';
import { PG15_BIN } from './throwaway-postgres.js';

function sh(cmd: string, args: string[], as?: { uid: number; gid: number }): string {
  return execFileSync(cmd, args, { ...as, env: { ...process.env, LC_ALL: 'C' } }).toString();
}

/** Counts instructions of single-user runs on copies of one prepared cluster. */
export interface Callgrind {
  /** Instructions of one run: `statements` (each ends with a semicolon and an empty line) in a fresh copy of the cluster. */
  count(label: string, statements: readonly string[]): number;
}

/**
 * Prepares a cluster (initdb, pgrelay's migrations, then `setup` on a connection), hands `body` a counter, and removes
 * everything afterwards. Needs valgrind and the PostgreSQL 15 binaries.
 */
export async function withCallgrind(setup: (c: pg.Client) => Promise<void>, body: (cg: Callgrind) => Promise<void>): Promise<void> {
  if (spawnSync('valgrind', ['--version']).status !== 0) throw new Error('valgrind is not installed (apt-get install valgrind)');
  const as = process.getuid?.() === 0 ? { uid: Number(sh('id', ['-u', 'postgres'])), gid: Number(sh('id', ['-g', 'postgres'])) } : undefined;
  const base = mkdtempSync(path.join(os.tmpdir(), 'pgrelay-callgrind-'));
  chmodSync(base, 0o777);
  try {
    const pristine = path.join(base, 'pristine');
    sh(path.join(PG15_BIN, 'initdb'), [`--pgdata=${pristine}`, '--username=postgres', '--auth=trust', '--encoding=UTF8', '--locale=C'], as);
    const port = await freePort();
    sh(path.join(PG15_BIN, 'pg_ctl'), ['start', '-w', '-D', pristine, '-l', path.join(base, 'log'), '-o', `-p ${port} -c listen_addresses=127.0.0.1 -k ${base}`], as);
    try {
      const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
      await migrate(url);
      const c = new pg.Client({ connectionString: url });
      c.on('error', () => undefined);
      await c.connect();
      try {
        await setup(c);
      } finally {
        await c.end();
      }
    } finally {
      sh(path.join(PG15_BIN, 'pg_ctl'), ['stop', '-w', '-D', pristine], as);
    }
    let runs = 0;
    await body({
      count(label, statements) {
        const data = path.join(base, 'data');
        rmSync(data, { recursive: true, force: true });
        cpSync(pristine, data, { recursive: true });
        if (as) sh('chown', ['-R', `${as.uid}:${as.gid}`, data]);
        const script = path.join(base, `script-${++runs}.sql`);
        // single-user mode with -j: a statement ends with a semicolon and an empty line
        writeFileSync(script, statements.map((s) => `${s};\n\n`).join(''));
        chmodSync(script, 0o644);
        const out = path.join(base, `callgrind-${runs}.out`);
        const r = spawnSync('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, path.join(PG15_BIN, 'postgres'), '--single', '-j', '-D', data,
          '-c', 'fsync=off', '-c', 'synchronous_commit=off', 'postgres'], { ...as, input: readFileSync(script), maxBuffer: 64 * 1024 * 1024 });
        const text = r.stdout.toString() + r.stderr.toString();
        if (/\bERROR\b/.test(text)) throw new Error(`${label}: ${text.split('\n').find((l) => l.includes('ERROR'))}`);
        const totals = /^(?:summary|totals): (\d+)/m.exec(readFileSync(out, 'utf8'));
        if (!totals) throw new Error(`${label}: no totals in ${out}`);
        return Number(totals[1]);
      },
    });
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

/** Prints a callgrind script's table and records it in bench/RESULTS.md under `title`, with its command, date and machine. */
export async function recordCallgrindSection(title: string, o: { command: string; settings: string; method: string; table: string }): Promise<void> {
  console.log(`\n${o.table}`);
  await writeSection(title, [
    `## ${title}`,
    '',
    `Command: \`${o.command}\``,
    `Date: ${new Date().toISOString()}; machine: ${describeMachine(machine(), { pinning: false })}; PostgreSQL 15 single-user mode under valgrind --tool=callgrind, ${o.settings}.`,
    o.method,
    '',
    o.table,
  ].join('\n'));
}
