// bench:catchup: is one tenant's catch-up proportional to its own changes, not to every transaction since the cursor?
import pg from 'pg';
import { createKysely, createPool } from '../../db/kysely.js';
import { readTransactions, streamChanges, type ChangeScope } from '../../db/log-reader.js';
import { migrate } from '../../db/migrate.js';
import type { Flags } from '../lib/args.js';
import type { Benchmark } from '../lib/benchmark.js';
import { describeMachine, machine } from '../lib/machine.js';
import { median } from '../lib/median.js';
import { onCleanup } from '../lib/processes.js';
import { writeSection } from '../lib/results.js';
import { benchSettings, startServer, type ServerKind } from '../lib/throwaway-postgres.js';

const TENANT = '7';
const TABLES = ['public.orders'];

interface Options { transactions: number; tenants: number; runs: number; server: ServerKind }

function options(flags: Flags): Options {
  const o = { transactions: flags.num('transactions', 500_000), tenants: flags.num('tenants', 100), runs: flags.num('runs', 5), server: flags.str('server', 'pg15') as ServerKind };
  if (!(o.transactions >= 1000) || !(o.tenants >= 1) || !(o.runs >= 1)) throw new Error('--transactions ≥ 1000, --tenants and --runs ≥ 1');
  if (o.server !== 'pg15' && o.server !== 'embedded') throw new Error('--server is pg15 or embedded');
  return o;
}

/**
 * Synthetic history written directly (as a superuser), as the ticker would have left it: seq 1..N, one change each,
 * txid = seq + 1000, tenants round-robin, and relay.tenant_seqs listing each transaction under its tenant.
 */
async function load(c: pg.Client, o: Options): Promise<void> {
  await c.query(`create table public.orders (id bigint primary key, tenant_id text not null, amount numeric(10,2) not null, status text not null)`);
  await c.query(`select relay.watch('public.orders', 'tenant_id')`);
  await c.query(`insert into relay.transactions (seq, txid, committed_at, db_user, application_name, change_count)
    select g, (g + 1000)::text::xid8, now() - ($1 - g) * interval '10 ms', 'bench', 'bench', 1 from generate_series(1, $1) g`, [o.transactions]);
  await c.query(`insert into relay.log (txid, relid, op, row)
    select (g + 1000)::text::xid8, 'public.orders'::regclass, 'insert', jsonb_build_object('id', g, 'tenant_id', (g % $2)::text, 'amount', 12.50, 'status', 'new')
    from generate_series(1, $1) g`, [o.transactions, o.tenants]);
  await c.query(`insert into relay.tenant_seqs (tenant, seq) select (g % $2)::text, g from generate_series(1, $1) g`, [o.transactions, o.tenants]);
  await c.query(`update relay.ticker set last_seq = $1, snap = pg_current_snapshot()`, [o.transactions]);
  for (const t of ['relay.transactions', 'relay.log', 'relay.tenant_seqs']) await c.query(`analyze ${t}`);
}

interface Captured { text: string; values: unknown[] }

/** Runs streamChanges to the end; returns rows, transactions and wall time. */
async function drain(db: ReturnType<typeof createKysely>, scope: ChangeScope, after: number, upTo: number) {
  const t0 = process.hrtime.bigint();
  let rows = 0;
  let txs = 0;
  for await (const tx of streamChanges(db, scope, after, upTo)) {
    txs += 1;
    rows += tx.changes.length;
  }
  return { rows, txs, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Shared Hit Blocks': number;
  'Shared Read Blocks': number;
  'Parent Relationship'?: string;
  'Subplan Name'?: string;
  Plans?: PlanNode[];
}

/**
 * What a plan touched per relation: rows fetched (rows × loops), or index probes where a nested loop's inner scan
 * finds less than a row per probe (EXPLAIN rounds rows per loop down to 0); InitPlans left out (the cursor bound is one probe).
 */
function planStats(root: { Plan: PlanNode; 'Execution Time': number }) {
  const read: Record<string, number> = {};
  const walk = (n: PlanNode) => {
    if (n['Parent Relationship'] === 'InitPlan') return;
    const rel = n['Relation Name'];
    if (rel) {
      const probes = n['Parent Relationship'] === 'Inner' ? n['Actual Loops'] : 0;
      read[rel] = (read[rel] ?? 0) + Math.max(n['Actual Rows'] * n['Actual Loops'], probes);
    }
    for (const p of n.Plans ?? []) walk(p);
  };
  walk(root.Plan);
  return {
    ms: root['Execution Time'],
    buffers: root.Plan['Shared Hit Blocks'] + root.Plan['Shared Read Blocks'],
    transactionsRead: read.transactions ?? 0,
    changesRead: read.log ?? 0,
    tenantSeqsRead: read.tenant_seqs ?? 0,
  };
}

async function explain(c: pg.Client, q: Captured) {
  const json = (await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode; 'Execution Time': number }> }>(`explain (analyze, buffers, format json) ${q.text}`, q.values)).rows[0]!['QUERY PLAN'][0]!;
  const text = (await c.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers, costs off) ${q.text}`, q.values)).rows.map((r) => r['QUERY PLAN']).join('\n');
  return { ...planStats(json), text };
}


const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

async function run(flags: Flags, command: string): Promise<void> {
  const o = options(flags);
  // a plan benchmark: durability is beside the point, and fsync off makes the load fast
  const server = await startServer(o.server, benchSettings(false));
  console.log(`server: ${server.version}`);
  const admin = new pg.Client({ connectionString: server.url() });
  await admin.connect();
  await admin.query('create database catchup');
  await admin.end();
  const url = server.url('catchup');
  await migrate(url);

  const c = new pg.Client({ connectionString: url, application_name: 'bench-catchup' });
  await c.connect();
  onCleanup(() => c.end().catch(() => undefined));
  const t0 = Date.now();
  await load(c, o);
  console.log(`loaded ${o.transactions.toLocaleString('en')} transactions in ${((Date.now() - t0) / 1000).toFixed(1)}s`);

  // the exact SQL and parameters streamChanges sends, taken off the wire (pg-cursor submits {text, values})
  let captured: Captured | undefined;
  const pool = createPool(url, { max: 2, applicationName: 'bench-catchup-stream' });
  pool.on('connect', (client: pg.PoolClient) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const q = args[0] as { text?: unknown; values?: unknown };
      if (q && typeof q === 'object' && typeof q.text === 'string') captured = { text: q.text, values: (q.values as unknown[]) ?? [] };
      // Kysely's own queries (readTransactions) go as (text, values)
      else if (typeof q === 'string') captured = { text: q, values: (args[1] as unknown[]) ?? [] };
      return query(...args);
    };
  });
  const db = createKysely(pool);
  onCleanup(() => db.destroy());

  const N = o.transactions;
  const cursors = [0, Math.round(N / 2), N - Math.round(N / 50)];
  const scopes: Array<{ name: string; scope: ChangeScope }> = [
    { name: `tenant ${TENANT}`, scope: { tenant: TENANT, tables: TABLES } },
    { name: 'all tenants', scope: { tenant: null, tables: TABLES } },
  ];

  interface Row { scope: string; after: number; rows: number; txSince: number; wallMs: number; planMs: number; buffers: number; transactionsRead: number; changesRead: number; tenantSeqsRead: number; text: string; query: Captured }
  const rows: Row[] = [];
  for (const { name, scope } of scopes) {
    for (const after of cursors) {
      const first = await drain(db, scope, after, N); // warm-up, and the query text
      const query = captured!;
      const times: number[] = [];
      for (let i = 0; i < o.runs; i++) times.push((await drain(db, scope, after, N)).ms);
      const plan = await explain(c, query);
      rows.push({ scope: name, after, rows: first.rows, txSince: N - after, wallMs: median(times), planMs: plan.ms, buffers: plan.buffers,
        transactionsRead: plan.transactionsRead, changesRead: plan.changesRead, tenantSeqsRead: plan.tenantSeqsRead, text: plan.text, query });
      console.log(`\n--- ${name}, after ${after}: EXPLAIN (ANALYZE, BUFFERS) of the streamChanges query\n${plan.text}`);
      console.log(`${name.padEnd(12)} after ${String(after).padStart(7)}: ${String(first.rows).padStart(6)} changes, streamChanges ${fmt(median(times))} ms (median of ${o.runs}); ` +
        `plan ${fmt(plan.ms)} ms, ${plan.buffers} buffers, touched ${plan.tenantSeqsRead} tenant_seqs + ${plan.transactionsRead} transactions + ${plan.changesRead} log rows`);
    }
  }

  // One page of readTransactions (gaps, reference payloads, reconnects; newest first, the ring at start): 500
  // transactions from the middle of the log. Its log rows touched must be the page's, not the log's.
  const pages: Array<{ name: string; wallMs: number; planMs: number; buffers: number; transactionsRead: number; changesRead: number; text: string }> = [];
  for (const [name, opts] of [['oldest first', { upTo: N, limit: 500 }], ['newest first', { upTo: N / 2 + 500, limit: 500, newestFirst: true }]] as const) {
    await readTransactions(db, N / 2, opts);
    const query = captured!;
    const times: number[] = [];
    for (let i = 0; i < o.runs; i++) {
      const t = process.hrtime.bigint();
      await readTransactions(db, N / 2, opts);
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    const plan = await explain(c, query);
    pages.push({ name, wallMs: median(times), planMs: plan.ms, buffers: plan.buffers, transactionsRead: plan.transactionsRead, changesRead: plan.changesRead, text: plan.text });
    console.log(`\n--- readTransactions, ${name}, 500 after ${N / 2}\n${plan.text}`);
  }

  // ---- report ----
  const excerpt = (text: string) => text.split('\n').filter((l) => /Scan|Join|Nested Loop|Sort|Gather|Index Cond|Execution Time|Hash Cond/.test(l) && !/Sort Method|Sort Key/.test(l)).join('\n');
  const pick = (after: number, scope: string) => rows.find((r) => r.after === after && r.scope === scope)!;
  const out: string[] = [
    `Command: \`${command}\``,
    `Date: ${new Date().toISOString()}; machine: ${describeMachine(machine(), { pinning: false })}; server: ${server.version} (${o.server}), default planner settings (fsync off: a plan benchmark).`,
    `Data: ${N.toLocaleString('en')} transactions in relay.transactions (seq 1..${N}, txid = seq + 1000), one change each in relay.log` +
      ` (table public.orders), ${o.tenants} tenants round-robin, each listed in relay.tenant_seqs: tenant ${TENANT} has ${(N / o.tenants).toLocaleString('en')} changes (${(100 / o.tenants).toFixed(0)} %). ANALYZE after the load.`,
    `Query: the exact SQL and parameters \`streamChanges\` (db/log-reader.ts) sends, captured from the pg-cursor it submits through \`createKysely(createPool(url))\`;` +
      ` wall time = draining streamChanges to the end, median of ${o.runs} after one warm-up. "touched" = rows each table gave the plan (rows × loops, or index probes for a nested loop's inner side).`,
    '',
    '| scope | cursor (after) | transactions since cursor | changes returned | streamChanges ms | EXPLAIN ANALYZE ms | shared buffers | relay.tenant_seqs rows | relay.transactions rows | relay.log rows |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.scope} | ${r.after} | ${r.txSince} | ${r.rows} | ${fmt(r.wallMs)} | ${fmt(r.planMs)} | ${r.buffers} | ${r.tenantSeqsRead} | ${r.transactionsRead} | ${r.changesRead} |`),
    '',
    `Plan excerpts (EXPLAIN (ANALYZE, BUFFERS), costs off):`,
    '',
    ...cursors.flatMap((after) => [`tenant ${TENANT}, after ${after}:`, '```', excerpt(pick(after, `tenant ${TENANT}`).text), '```', '']),
    `all tenants, after ${cursors[2]}:`, '```', excerpt(pick(cursors[2]!, 'all tenants').text), '```',
    '',
    `One page of \`readTransactions\` (500 transactions after ${N / 2}, all tenants: how the relay closes gaps, reads reference payloads and fills its ring at start), its exact SQL captured the same way:`,
    '',
    '| page | readTransactions ms | EXPLAIN ANALYZE ms | shared buffers | relay.transactions rows | relay.log rows |',
    '|---|---:|---:|---:|---:|---:|',
    ...pages.map((r) => `| ${r.name} | ${fmt(r.wallMs)} | ${fmt(r.planMs)} | ${r.buffers} | ${r.transactionsRead} | ${r.changesRead} |`),
    '',
    ...pages.flatMap((r) => [`readTransactions, ${r.name}:`, '```', excerpt(r.text), '```', '']),
  ];
  const text = out.join('\n');
  console.log(`\n${text}`);
  await writeSection('catchup', `## Catch-up plan\n\n${text}`);
}

/**
 * Catch-up plan (`npm run bench:catchup`): is one tenant's catch-up (streamChanges) proportional to that tenant's changes,
 * not to every transaction since the cursor? Builds a synthetic log (one change per transaction, tenants round-robin,
 * so one tenant holds 1 %), then runs the exact query streamChanges issues (captured off the wire, through
 * createKysely(createPool(url))) for cursors near the start, the middle and the end, for one tenant and for the
 * all-tenants scope; prints EXPLAIN (ANALYZE, BUFFERS) and wall times.
 */
export const catchup: Benchmark = {
  name: 'catchup',
  title: "Catch-up plan: one tenant's catch-up reads its own changes, not every transaction since the cursor (EXPLAIN ANALYZE, wall time)",
  usage: '--transactions 500000 --tenants 100 --runs 5 --server pg15|embedded',
  run: (flags, ctx) => run(flags, ctx.command),
};
