// Where the capture functions spend their time: self time per call of relay.capture and relay.sequence
// (pg_stat_user_functions) with one piece of the sequencer switched off at a time, capture under each plan-cache mode,
// what function-level SET clauses cost, and whole-transaction TPS with and without capture. Measurement only: every
// variant is put back before the next one runs.
//
//   npm run bench:capture-functions -- [--seconds 5] [--rounds 2] [--server pg15|embedded]
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { migrate } from '../../db/migrate.js';
import { machine, median, onCleanup, pgbench, runMain, startServer, writeResultsSection, type ServerKind } from './server.js';

const SCHEMA = `
  create table items (id bigserial primary key, tenant_id text not null, name text, qty int, price numeric(10,2), updated_at timestamptz default now());
  create table plain_items (like items including all);
  insert into items (tenant_id, name, qty, price) select 't' || (g % 50), 'item ' || g, g % 100, g / 7.0 from generate_series(1, 100000) g;
  insert into plain_items select * from items;
  select relay.watch('items', 'tenant_id');
  -- empty statement triggers with 0, 1 and 4 function-level SET clauses
  create function set0() returns trigger language plpgsql as $$ begin return null; end $$;
  create function set1() returns trigger language plpgsql security definer set search_path = pg_catalog, pg_temp as $$ begin return null; end $$;
  create function set4() returns trigger language plpgsql security definer set search_path = pg_catalog, pg_temp
    set "TimeZone" = 'UTC' set "IntervalStyle" = 'postgres' set extra_float_digits = 1 as $$ begin return null; end $$;
  create table set0 (id int); create table set1 (id int); create table set4 (id int);
  create trigger t after insert on set0 referencing new table as n for each statement execute function set0();
  create trigger t after insert on set1 referencing new table as n for each statement execute function set1();
  create trigger t after insert on set4 referencing new table as n for each statement execute function set4();
`;
const TX = (table: string) => `\\set id random(1, 100000)
BEGIN;
UPDATE ${table} SET qty = qty + 1 WHERE id = :id;
INSERT INTO ${table} (tenant_id, name, qty, price) VALUES ('t1', 'new', 1, 2.5);
END;
`;

/** Variants of relay.sequence: one piece of its source taken out, so that its cost is the difference. */
const SEQUENCE_VARIANTS: Array<{ name: string; edit: (def: string) => string }> = [
  { name: 'as shipped', edit: (d) => d },
  { name: 'no read-back of the changes for the inline payload', edit: (d) => d.replace('if n <= 32 then', 'if false then') },
  { name: 'no `relay.transactions` insert', edit: (d) => d.replace(/insert into relay\.transactions[\s\S]*?pg_current_snapshot\(\)\)\);/, 'null;') },
  { name: 'no `pg_notify`', edit: (d) => d.replace("perform pg_notify('relay', payload);", 'null;') },
];

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, rounds: { type: 'string', default: '2' }, server: { type: 'string', default: 'pg15' } } });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const command = `npm run bench:capture-functions${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`;
  const server = await startServer(values.server as ServerKind, { fsync: 'off', synchronous_commit: 'off', track_functions: 'all', shared_buffers: '256MB' });
  const admin = new pg.Client({ connectionString: server.url('postgres') });
  await admin.connect();
  await admin.query('create database bench');
  await admin.end();
  await migrate(server.url('bench'));
  const db = new pg.Client({ connectionString: server.url('bench') });
  await db.connect();
  onCleanup(() => db.end().catch(() => undefined));
  await db.query(SCHEMA);
  await db.query('vacuum analyze');

  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgrelay-functions-'));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  const script = async (name: string, text: string) => {
    const file = path.join(dir, `${name}.sql`);
    await writeFile(file, text);
    return file;
  };
  const tx = await script('items', TX('items'));
  const plainTx = await script('plain', TX('plain_items'));
  const sets = await Promise.all(['set0', 'set1', 'set4'].map((t) => script(t, `INSERT INTO ${t} VALUES (1);\n`)));

  /** One pgbench run; then µs of self time per call of each relay function it called. */
  const selfTimes = async (file: string): Promise<{ tps: number; us: Map<string, number> }> => {
    await db.query('select pg_stat_reset()');
    const { tps } = await pgbench(server, file, 1, seconds);
    await new Promise((r) => setTimeout(r, 1000)); // pgbench's backend flushes its function stats as it exits
    const { rows } = await db.query<{ f: string; us: number }>(
      `select funcname as f, self_time / calls * 1000 as us from pg_stat_user_functions where schemaname = 'relay' and calls > 0`);
    return { tps, us: new Map(rows.map((r) => [r.f, r.us])) };
  };
  const { rows } = await db.query<{ def: string }>(`select pg_get_functiondef('relay.sequence'::regproc) as def`);
  const shipped = rows[0]!.def;

  const seq = SEQUENCE_VARIANTS.map((v) => ({ ...v, capture: [] as number[], sequence: [] as number[], tps: [] as number[] }));
  const plans = ['unset', 'force_generic_plan', 'force_custom_plan'].map((mode) => ({ mode, capture: [] as number[] }));
  const setRuns = sets.map(() => [] as number[]);
  const whole = { plain: [] as number[], capture: [] as number[], noSequencer: [] as number[] };
  try {
    // warm-up, not measured: caches, the first plans, the log's first pages
    for (const file of [tx, plainTx, ...sets]) await pgbench(server, file, 1, 2);
    for (let round = 0; round < rounds; round++) {
      console.log(`round ${round + 1} of ${rounds}`);
      for (const v of seq) {
        const def = v.edit(shipped);
        if (def === shipped && v !== seq[0]) throw new Error(`relay.sequence changed, "${v.name}" no longer applies: update this benchmark`);
        await db.query(def);
        const r = await selfTimes(tx);
        v.capture.push(r.us.get('capture') ?? NaN);
        v.sequence.push(r.us.get('sequence') ?? NaN);
        v.tps.push(r.tps);
      }
      await db.query(shipped);
      for (const p of plans) {
        await db.query(p.mode === 'unset' ? 'alter function relay.capture reset plan_cache_mode' : `alter function relay.capture set plan_cache_mode = ${p.mode}`);
        p.capture.push((await selfTimes(tx)).us.get('capture') ?? NaN);
      }
      await db.query('alter function relay.capture reset plan_cache_mode');
      for (const [i, file] of sets.entries()) setRuns[i]!.push((await pgbench(server, file, 1, seconds)).tps);
      whole.plain.push((await pgbench(server, plainTx, 1, seconds)).tps);
      whole.capture.push((await pgbench(server, tx, 1, seconds)).tps);
      await db.query('alter table relay.changes disable trigger sequence_commit');
      whole.noSequencer.push((await pgbench(server, tx, 1, seconds)).tps);
      await db.query('alter table relay.changes enable always trigger sequence_commit');
    }
  } finally {
    await db.query(shipped).catch(() => undefined);
  }

  const each = (xs: number[], digits = 0) => xs.map((x) => x.toFixed(digits)).join(' / ');
  const msPerTx = (tps: number[]) => (1000 / median(tps)).toFixed(2);
  const body = [
    `Command: \`${command}\``,
    `Date: ${new Date().toISOString()}; machine: ${machine()}; server: ${server.version} (${values.server}), fsync=off, track_functions=all.`,
    'Table `items` (100,000 rows, watched with tenant column `tenant_id`) and an unwatched copy `plain_items`. One transaction = UPDATE one random row + INSERT one row, `pgbench -n -c 1`, ' +
      `${seconds} s per run; rounds given as round 1 / round 2 / …. Self time per call from \`pg_stat_user_functions\` after \`pg_stat_reset()\`; each variant replaces one piece of \`relay.sequence\` and is put back afterwards.`,
    '',
    '| variant of relay.sequence (the rest unchanged) | relay.capture µs/call | relay.sequence µs/call | TPS |',
    '|---|---:|---:|---:|',
    ...seq.map((v) => `| ${v.name} | ${each(v.capture)} | ${each(v.sequence)} | ${each(v.tps)} |`),
    '',
    '| `plan_cache_mode` of relay.capture | relay.capture µs/call |',
    '|---|---:|',
    ...plans.map((p) => `| ${p.mode} | ${each(p.capture)} |`),
    '',
    '| empty statement trigger (single-row inserts) | TPS |',
    '|---|---:|',
    ...['no SET clause', '1 SET clause (`search_path`)', '4 SET clauses (`search_path`, `TimeZone`, `IntervalStyle`, `extra_float_digits`)'].map((n, i) => `| ${n} | ${each(setRuns[i]!)} |`),
    '',
    '| whole transaction | TPS | ms/tx (median) |',
    '|---|---:|---:|',
    `| \`plain_items\` (no capture) | ${each(whole.plain)} | ${msPerTx(whole.plain)} |`,
    `| \`items\` (capture) | ${each(whole.capture)} | ${msPerTx(whole.capture)} |`,
    `| \`items\`, sequencer switched off (measurement only) | ${each(whole.noSequencer)} | ${msPerTx(whole.noSequencer)} |`,
  ].join('\n');
  console.log(`\n${body}`);
  const file = await writeResultsSection("Capture overhead: where the functions' time goes", body);
  console.log(`\nwritten to ${file}`);
}

runMain(main);
