// bench:tick: what a tick costs Postgres in instructions, and what each candidate for a cheaper tick saves.
import { readFileSync } from 'node:fs';
import { TICKER_SESSION_SETTINGS } from '../../db/ticker/ticker-options.js';
import type { Flags } from '../lib/args.js';
import type { Benchmark } from '../lib/benchmark.js';
import { recordCallgrindSection, withCallgrind } from '../lib/callgrind.js';
import { ordersSql } from '../lib/targets.js';

interface Variant { name: string; what: string; sql: string }

/** `relay.tick_v`, a copy of a tick function's definition with `edit` applied (which must change something). */
function copy(def: string, from: string, edit?: (s: string) => string): string {
  // single-user mode ends a statement at a semicolon followed by a blank line (postgres -j): the body has none then
  const renamed = def.replace(new RegExp(`FUNCTION relay\\.${from}\\(`), 'FUNCTION relay.tick_v(').replace(/\n[ \t]*\n/g, '\n');
  if (!edit) return renamed;
  const out = edit(renamed);
  if (out === renamed) throw new Error(`the edit for a variant of ${from} changed nothing: relay.tick changed, update this benchmark`);
  return out;
}

async function run(flags: Flags, command: string): Promise<void> {
  const ticks = flags.num('ticks', 200);
  const batches = flags.list('batches', ['1', '10', '100']).map(Number);
  const only = flags.str('variants')?.split(',');
  const variants: Variant[] = [];
  await withCallgrind(async (c) => {
    // the benchmarks' table (its `mid` stays 0 here)
    await c.query(`${readFileSync(ordersSql, 'utf8')}\nselect relay.watch('orders', 'tenant_id');`);
    const def = async (sig: string) => (await c.query<{ d: string }>(`select pg_get_functiondef($1::regprocedure) as d`, [sig])).rows[0]!.d;
    const shipped = await def('relay.tick(pg_snapshot,integer,integer)');
    const old = await def('relay._tick_before_011(pg_snapshot,integer)');
    variants.push(
      { name: 'shipped', what: 'relay.tick as shipped', sql: copy(shipped, 'tick') },
      { name: '0.2', what: "pgrelay 0.2's tick (each change's JSON built in SQL: pk, the update's diff, five ordered aggregates for who and why)", sql: copy(old, '_tick_before_011') },
      { name: 'one-notify', what: 'shipped, one NOTIFY per tick for the whole batch (its first 7,900 bytes, for the measurement)',
        sql: copy(shipped, 'tick', (s) => s.replace(/foreach payload in array sent loop\s+perform pg_notify\('relay', payload\);\s+end loop;/,
          `perform pg_notify('relay', left(array_to_string(sent, ','), 7900));`)) },
      { name: 'raw-rows', what: 'shipped, rows not rendered in SQL (the relay would render int8/numeric, timestamptz and interval values)',
        sql: copy(shipped, 'tick', (s) => s.replace('relay._render(c.relid, c.row)::text', 'c.row::text').replace('relay._render(c.relid, c.old_row)::text', 'c.old_row::text')) },
      { name: 'no-tx-rows', what: 'shipped, without the rows of relay.transactions and relay.tenant_seqs (as if per batch)',
        sql: copy(shipped, 'tick', (s) => s.replace(/insert into relay\.transactions \([^)]*\)\s+select/, 'select').replace(/insert into relay\.tenant_seqs \(tenant, seq\)\s+select/, 'select')) },
      { name: 'floor', what: 'floor: read the batch, write one relay.transactions row and the ticker\'s row, one NOTIFY of the rows as they are', sql: `
        create function relay.tick_v(known pg_snapshot default null, max_inline integer default 200, lease_ms integer default null)
        returns table (last_seq bigint, sequenced integer, snap pg_snapshot) language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
        declare st relay.ticker; cur pg_snapshot := pg_current_snapshot(); n integer; p text;
        begin
          select * into st from relay.ticker;
          select count(*), string_agg(l.row::text, ',') into n, p from relay.log l where l.txid >= pg_snapshot_xmax(st.snap) and l.txid < pg_snapshot_xmax(cur);
          insert into relay.transactions (seq, txid, committed_at, db_user, change_count) values (st.last_seq + 1, pg_snapshot_xmax(cur), now(), 'x', n);
          update relay.ticker set last_seq = st.last_seq + 1, snap = cur, ticked_at = now();
          perform pg_notify('relay', left(coalesce(p, ''), 7900));
          return query select st.last_seq + 1, 1, cur;
        end $$` },
    );
  }, async (cg) => {
    // what the ticker's own session sets
    const session = Object.entries(TICKER_SESSION_SETTINGS).map(([name, value]) => `set ${name} = ${value}`);
    const rows: Array<{ v: Variant; perTick: number[] }> = [];
    for (const v of variants.filter((x) => !only || only.includes(x.name))) {
      const perTick: number[] = [];
      for (const b of batches) {
        const k = Math.max(5, Math.round(ticks / Math.sqrt(b)));
        const run = (tick: boolean) => {
          const statements = [...session, v.sql.trim()];
          for (let i = 0; i < k; i++) {
            for (let j = 0; j < b; j++) statements.push(`insert into orders (tenant_id, customer, amount, status) values ('t${(i * b + j) % 50}', 'c', ${(i + j) % 100}.5, 'open')`);
            if (tick) statements.push('begin isolation level repeatable read', 'select * from relay.tick_v()', 'commit');
          }
          return cg.count(`${v.name} x${b}`, statements);
        };
        perTick.push((run(true) - run(false)) / k);
        console.log(`${v.name.padEnd(12)} batch ${String(b).padStart(3)}: ${Math.round(perTick.at(-1)!).toLocaleString('en').padStart(12)} instructions per tick`);
      }
      rows.push({ v, perTick });
    }
    const shipped = rows.find((r) => r.v.name === 'shipped');
    const table = [
      `| variant | what | ${batches.map((b) => `per tick, ${b} transaction${b > 1 ? 's' : ''}`).join(' | ')} | ${shipped ? batches.map((b) => `÷ shipped (${b})`).join(' | ') : ''} |`,
      `|---|---|${batches.map(() => '---:').join('|')}|${shipped ? batches.map(() => '---:').join('|') : ''}|`,
      ...rows.map((r) => `| ${r.v.name} | ${r.v.what} | ${r.perTick.map((x) => Math.round(x).toLocaleString('en')).join(' | ')} | ${shipped ? r.perTick.map((x, i) => (x / shipped.perTick[i]!).toFixed(2)).join(' | ') : ''} |`),
    ].join('\n');
    await recordCallgrindSection('Tick: what a tick costs Postgres (instructions)', {
      command,
      settings: "fsync off, the ticker session's settings",
      method: `Per variant and batch size B: K rounds of B one-row autocommit INSERTs into a watched table and one tick (REPEATABLE READ), K = ${ticks}/√B (at least 5); instructions per tick = (the run with the ticks − the same run without them) / K. Instructions count the SQL work alone: not the round trip, the wake-up of the backend, nor cache misses, which the latency benchmark's Postgres CPU by process includes.`,
      table,
    });
  });
}

/**
 * What a tick costs Postgres, in instructions, and what each candidate for a cheaper tick saves (issue 22): relay.tick
 * as shipped, pgrelay 0.2's tick, and the shipped tick with one thing taken out at a time. Postgres in single-user mode
 * under callgrind runs K rounds of (B one-row transactions, one tick); per tick = (run with ticks − run without) / K.
 * Needs valgrind and the PostgreSQL 15 binaries in /usr/lib/postgresql/15/bin.
 */
export const tick: Benchmark = {
  name: 'tick',
  title: "What a tick costs Postgres in instructions (callgrind), shipped against 0.2's and against one thing taken out at a time",
  usage: `--ticks 200 --batches 1,10,100 --variants shipped,0.2,one-notify,raw-rows,no-tx-rows,floor (default: all)
(needs valgrind and the PostgreSQL 15 binaries in /usr/lib/postgresql/15/bin)`,
  run: (flags, ctx) => run(flags, ctx.command),
};
