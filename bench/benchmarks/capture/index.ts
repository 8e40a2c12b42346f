// bench:capture: pgbench TPS and Postgres CPU per transaction under each capture mode, interleaved on one server.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { migrate } from '../../../db/migrate.js';
import type { Flags } from '../../lib/args.js';
import type { Benchmark } from '../../lib/benchmark.js';
import { describeMachine, machine } from '../../lib/machine.js';
import { postmasterPid } from '../../lib/postgres-cpu.js';
import { onCleanup } from '../../lib/processes.js';
import { writeSection } from '../../lib/results.js';
import { benchSettings, startServer, type ServerKind } from '../../lib/throwaway-postgres.js';
import { fullPageWrites } from './full-page-writes.js';
import { createSchema, MODE_NAMES, reset, ROWS, TENANTS, BULK, type Mode } from './modes.js';
import { report } from './report.js';
import { Listener, throughput } from './throughput.js';

interface Options { seconds: number; clients: number[]; repeat: number; server: ServerKind; fsync: boolean; modes: Mode[]; bulk: boolean }

function options(flags: Flags): Options {
  const seconds = flags.num('seconds', 15);
  const repeat = flags.num('repeat', 3);
  const clients = flags.list('clients', ['1', '4', '8', '16']).map(Number);
  const server = flags.str('server', 'pg15');
  const fsync = flags.str('fsync', 'on');
  const modes = [...new Set([...flags.list('modes', ['a', 'b', 'f', 'c', 's']), ...(flags.bool('row-level') ? ['d'] : [])])] as Mode[];
  if (!(seconds > 0) || !(repeat >= 1) || clients.some((c) => !(c >= 1))) throw new Error('--seconds, --repeat and --clients must be positive numbers');
  if (server !== 'pg15' && server !== 'embedded') throw new Error('--server is pg15 or embedded');
  if (fsync !== 'on' && fsync !== 'off') throw new Error('--fsync is on or off');
  for (const m of modes) if (!(m in MODE_NAMES)) throw new Error(`--modes: unknown mode ${m} (a, b, f, c, s, d)`);
  return { seconds, clients, repeat, server, fsync: fsync === 'on', modes, bulk: !flags.bool('no-bulk') };
}

const SCRIPT_1ROW = `\\set id random(1, ${ROWS})
\\set tenant random(1, ${TENANTS})
BEGIN;
UPDATE items SET qty = qty + 1, updated_at = now() WHERE id = :id;
INSERT INTO items (tenant_id, sku, qty, price, note) VALUES (:tenant, 'sku-new', 1, 9.99, 'bench insert');
END;
`;

const SCRIPT_BULK = `\\set start random(1, ${ROWS - BULK})
\\set tenant random(1, ${TENANTS})
BEGIN;
INSERT INTO bulk_items (tenant_id, sku, qty, price, note) SELECT :tenant, 'sku-bulk', g % 100, 9.99, 'bench bulk' FROM generate_series(1, ${BULK}) g;
UPDATE bulk_items SET qty = qty + 1, updated_at = now() WHERE id BETWEEN :start AND :start + ${BULK - 1};
END;
`;

async function run(flags: Flags, command: string): Promise<void> {
  const opts = options(flags);
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`capture overhead: ${opts.server} server, fsync ${opts.fsync ? 'on' : 'off'}, ${opts.seconds}s × clients ${opts.clients.join(',')} × modes ${opts.modes.join(',')} × ${opts.repeat} repeat(s)${opts.bulk ? ' (+ 1000-row statements)' : ''}; load average before: ${load}`);
  const server = await startServer(opts.server, benchSettings(opts.fsync));
  console.log(`server: ${server.version}`);

  const admin = new pg.Client({ connectionString: server.url('postgres') });
  await admin.connect();
  await admin.query('create database bench');
  await admin.end();
  await migrate(server.url('bench'));
  const db = new pg.Client({ connectionString: server.url('bench'), application_name: 'bench-admin' });
  await db.connect();
  onCleanup(() => db.end().catch(() => undefined));
  await fullPageWrites(db, opts.fsync);
  await createSchema(db);
  await reset(db);
  const postmaster = await postmasterPid(db);
  if (!Number.isFinite(postmaster)) throw new Error('the server runs elsewhere: its CPU cannot be read from /proc');

  const scriptDir = await mkdtemp(path.join(os.tmpdir(), 'pgrelay-pgbench-'));
  onCleanup(() => rm(scriptDir, { recursive: true, force: true }));
  await chmod(scriptDir, 0o755);
  const scripts = { oneRow: path.join(scriptDir, 'one-row.sql'), bulk: path.join(scriptDir, 'bulk.sql') };
  await writeFile(scripts.oneRow, SCRIPT_1ROW);
  await writeFile(scripts.bulk, SCRIPT_BULK);

  // attached in every mode (idle in most): the seed style needs one, and a deployment has one
  const listener = await Listener.start(server.url('bench'));

  console.log('\nthroughput runs:');
  const runs = await throughput(server, db, listener, {
    seconds: opts.seconds, clients: opts.clients, repeat: opts.repeat, modes: opts.modes, scripts, postmaster, bulk: opts.bulk,
  });
  const { text, goals } = report(runs, opts.clients, opts.modes);
  const verdicts = goals.map((g) => `- ${g.goal}: ${g.value} — **${g.pass ? 'pass' : 'fail'}**`).join('\n');
  console.log(`\n${text}\n\n${verdicts}`);

  const header = [
    `Command: \`${command}\``,
    `Date: ${new Date().toISOString()}; machine: ${describeMachine(machine(), { pinning: false })}; load average before the run: ${load}; server: ${server.version} (${opts.server}), fsync=${opts.fsync ? 'on' : 'off'}` +
      ` (synchronous_commit and full_page_writes follow it), shared_buffers=256MB.`,
    `Workload: table of ${ROWS.toLocaleString('en')} rows, ${TENANTS} tenants; one transaction = UPDATE one random row + INSERT one row (pgbench, simple protocol).` +
      ` ${opts.seconds}s per run, ${opts.repeat} repeat(s), modes interleaved in rotating order, median reported; the tables are reset (100k rows, empty logs, VACUUM ANALYZE, CHECKPOINT) before every run.` +
      ' A LISTEN session in its own process drains `items` and `relay` throughout. Mode s starts a relay process (`relay/cli.ts start`, unpinned) for each run.',
    '',
    ...Object.entries(MODE_NAMES).filter(([m]) => opts.modes.includes(m as Mode)).map(([, name]) => `- ${name}`),
  ].join('\n');
  await writeSection('capture', ['## Capture overhead', '', header, '', text, '', 'Goals:', '', verdicts].join('\n'));
}

/**
 * Capture overhead (`npm run bench:capture`): pgbench TPS of one table with no trigger, the seed-style pg_notify trigger,
 * the floor (a bare statement log), pgrelay's writer alone and pgrelay with a relay running, on one server, interleaved.
 */
export const capture: Benchmark = {
  name: 'capture',
  title: "Capture overhead: pgbench TPS and Postgres CPU per transaction with no trigger, the seed-style trigger, a bare log, pgrelay's capture, and a relay running",
  usage: `--seconds 15 --clients 1,4,8,16 --repeat 3 --server pg15|embedded --fsync on|off
--modes a,b,f,c,s (no trigger, seed style, floor, pgrelay, pgrelay with a relay) --row-level (adds d) --no-bulk (no 1000-row statements)`,
  run: (flags, ctx) => run(flags, ctx.command),
};
