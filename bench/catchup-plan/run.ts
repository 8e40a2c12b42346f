// Catch-up plan benchmark: is one tenant's catch-up (streamChanges) proportional to that tenant's changes, not to every transaction since the cursor?
//
//   npm run bench:catchup -- [--transactions 500000] [--tenants 100] [--runs 5] [--server pg15|embedded]
//
// Builds a synthetic log (one change per transaction, tenants round-robin, so one tenant holds 1 %), then runs the exact
// query streamChanges issues (captured off the wire, through createKysely(createPool(url))) for cursors near the start,
// the middle and the end, for one tenant and for the all-tenants scope; prints EXPLAIN (ANALYZE, BUFFERS) and wall times.
// It then checks that the plan does not depend on a lucky estimate: with expression statistics on the table filter, and
// with a LATERAL form that pins the join order.
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createKysely, createPool } from '../../db/kysely.js';
import { streamChanges, type ChangeScope } from '../../db/log-reader.js';
import { migrate } from '../../db/migrate.js';
import { benchSettings, machine, median, onCleanup, runMain, startServer, writeResultsSection, type ServerKind } from '../capture-overhead/server.js';

const TENANT = '7';
const TABLES = ['public.orders'];

interface Options { transactions: number; tenants: number; runs: number; server: ServerKind }

function options(): Options {
  const { values } = parseArgs({
    options: {
      transactions: { type: 'string', default: '500000' },
      tenants: { type: 'string', default: '100' },
      runs: { type: 'string', default: '5' },
      server: { type: 'string', default: 'pg15' },
    },
  });
  const o = { transactions: Number(values.transactions), tenants: Number(values.tenants), runs: Number(values.runs), server: values.server as ServerKind };
  if (!(o.transactions >= 1000) || !(o.tenants >= 1) || !(o.runs >= 1)) throw new Error('--transactions ≥ 1000, --tenants and --runs ≥ 1');
  if (o.server !== 'pg15' && o.server !== 'embedded') throw new Error('--server is pg15 or embedded');
  return o;
}

/** Synthetic history written directly (as a superuser): seq 1..N, increasing txids, running_xmin a few txids behind. */
async function load(c: pg.Client, o: Options): Promise<void> {
  await c.query(`create table public.orders (id bigint primary key, tenant_id text not null, amount numeric(10,2) not null, status text not null)`);
  await c.query(`select relay.watch('public.orders', 'tenant_id')`);
  // the sequencer would fire once per inserted first change: these transactions are already "sequenced"
  await c.query('alter table relay.changes disable trigger sequence_commit');
  await c.query(`insert into relay.transactions (seq, txid, committed_at, db_user, application_name, change_count, running_xmin)
    select g, (g + 1000)::text::xid8, now() - ($1 - g) * interval '10 ms', 'bench', 'bench', 1, (g + 1000 - floor(random() * 20))::bigint::text::xid8
    from generate_series(1, $1) g`, [o.transactions]);
  await c.query(`insert into relay.changes (txid, id, tenant, schema_name, table_name, op, pk, row)
    select (g + 1000)::text::xid8, 1, (g % $2)::text, 'public', 'orders', 'insert', jsonb_build_object('id', g::text),
           jsonb_build_object('id', g::text, 'tenant_id', (g % $2)::text, 'amount', '12.50', 'status', 'new')
    from generate_series(1, $1) g`, [o.transactions, o.tenants]);
  await c.query('alter table relay.changes enable always trigger sequence_commit');
  await c.query('analyze relay.transactions');
  await c.query('analyze relay.changes');
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
    changesRead: read.changes ?? 0,
  };
}

async function explain(c: pg.Client, q: Captured) {
  const json = (await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode; 'Execution Time': number }> }>(`explain (analyze, buffers, format json) ${q.text}`, q.values)).rows[0]!['QUERY PLAN'][0]!;
  const text = (await c.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers, costs off) ${q.text}`, q.values)).rows.map((r) => r['QUERY PLAN']).join('\n');
  return { ...planStats(json), text };
}

/** Median wall time of a plain (non-cursor) execution, for the alternative query forms. */
async function timeQuery(c: pg.Client, q: Captured, runs: number): Promise<number> {
  const times: number[] = [];
  await c.query(q.text, q.values); // warm
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await c.query(q.text, q.values);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(times);
}


const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

async function main(): Promise<void> {
  const o = options();
  const command = `npm run bench:catchup${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`;
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

  interface Row { scope: string; after: number; rows: number; txSince: number; wallMs: number; planMs: number; buffers: number; transactionsRead: number; changesRead: number; text: string; query: Captured }
  const rows: Row[] = [];
  for (const { name, scope } of scopes) {
    for (const after of cursors) {
      const first = await drain(db, scope, after, N); // warm-up, and the query text
      const query = captured!;
      const times: number[] = [];
      for (let i = 0; i < o.runs; i++) times.push((await drain(db, scope, after, N)).ms);
      const plan = await explain(c, query);
      rows.push({ scope: name, after, rows: first.rows, txSince: N - after, wallMs: median(times), planMs: plan.ms, buffers: plan.buffers,
        transactionsRead: plan.transactionsRead, changesRead: plan.changesRead, text: plan.text, query });
      console.log(`\n--- ${name}, after ${after}: EXPLAIN (ANALYZE, BUFFERS) of the streamChanges query\n${plan.text}`);
      console.log(`${name.padEnd(12)} after ${String(after).padStart(7)}: ${String(first.rows).padStart(6)} changes, streamChanges ${fmt(median(times))} ms (median of ${o.runs}); ` +
        `plan ${fmt(plan.ms)} ms, ${plan.buffers} buffers, touched ${plan.transactionsRead} transactions + ${plan.changesRead} changes`);
    }
  }

  // robustness: the same tenant query once the planner estimates the table filter correctly, and the LATERAL form
  const tenantRows = rows.filter((r) => r.scope !== 'all tenants');
  const alt: Array<{ variant: string; after: number; rows: number; ms: number; planMs: number; buffers: number; transactionsRead: number; changesRead: number; text: string }> = [];
  const variants = async (label: string) => {
    for (const r of tenantRows) {
      for (const [variant, q] of [[`streamChanges query${label}`, r.query]] as const) {
        const plan = await explain(c, q);
        alt.push({ variant, after: r.after, rows: r.rows, ms: await timeQuery(c, q, o.runs), planMs: plan.ms, buffers: plan.buffers, transactionsRead: plan.transactionsRead, changesRead: plan.changesRead, text: plan.text });
      }
    }
  };
  await variants(', default statistics');
  // expression statistics make the estimate of `schema_name || '.' || table_name = any (…)` exact (default: 0.5 %)
  await c.query(`create statistics relay.bench_changes_table on (schema_name || '.' || table_name) from relay.changes`);
  await c.query('analyze relay.changes');
  await variants(', with expression statistics');
  await c.query('drop statistics relay.bench_changes_table');
  await c.query('analyze relay.changes');
  for (const a of alt) {
    console.log(`${a.variant.padEnd(52)} after ${String(a.after).padStart(7)}: ${fmt(a.ms)} ms, ${a.buffers} buffers, touched ${a.transactionsRead} transactions + ${a.changesRead} changes`);
  }

  // ---- report ----
  const excerpt = (text: string) => text.split('\n').filter((l) => /Scan|Join|Nested Loop|Sort|Gather|Index Cond|Execution Time|Hash Cond/.test(l) && !/Sort Method|Sort Key/.test(l)).join('\n');
  const pick = (after: number, scope: string) => rows.find((r) => r.after === after && r.scope === scope)!;
  const out: string[] = [
    `Command: \`${command}\``,
    `Date: ${new Date().toISOString()}; machine: ${machine()}; server: ${server.version} (${o.server}), default planner settings (fsync off: a plan benchmark).`,
    `Data: ${N.toLocaleString('en')} transactions in relay.transactions (seq 1..${N}, txid = seq + 1000, running_xmin = txid − random 0..19), one change each in relay.changes` +
      ` (table public.orders), ${o.tenants} tenants round-robin: tenant ${TENANT} has ${(N / o.tenants).toLocaleString('en')} changes (${(100 / o.tenants).toFixed(0)} %). ANALYZE after the load.`,
    `Query: the exact SQL and parameters \`streamChanges\` (db/log-reader.ts) sends, captured from the pg-cursor it submits through \`createKysely(createPool(url))\`;` +
      ` wall time = draining streamChanges to the end, median of ${o.runs} after one warm-up. "touched" = rows each table gave the plan (rows × loops, or index probes for a nested loop's inner side; the one-probe cursor bound left out).`,
    '',
    '| scope | cursor (after) | transactions since cursor | changes returned | streamChanges ms | EXPLAIN ANALYZE ms | shared buffers | relay.transactions rows touched | relay.changes rows touched |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.scope} | ${r.after} | ${r.txSince} | ${r.rows} | ${fmt(r.wallMs)} | ${fmt(r.planMs)} | ${r.buffers} | ${r.transactionsRead} | ${r.changesRead} |`),
    '',
    `Plan excerpts (EXPLAIN (ANALYZE, BUFFERS), costs off):`,
    '',
    ...cursors.flatMap((after) => [`tenant ${TENANT}, after ${after}:`, '```', excerpt(pick(after, `tenant ${TENANT}`).text), '```', '']),
    `all tenants, after ${cursors[2]}:`, '```', excerpt(pick(cursors[2]!, 'all tenants').text), '```', '',
    'Does the tenant plan depend on a lucky estimate? The same tenant query (its LATERAL … LIMIT 1 pins the join order) with default' +
      ' statistics and with exact estimates for the table filter (`create statistics … on (schema_name || \'.\' || table_name) from relay.changes`),' +
      ' plain execution without a cursor, median ms:',
    '',
    '| variant | cursor (after) | changes returned | ms | shared buffers | relay.transactions rows touched | relay.changes rows touched |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...alt.map((a) => `| ${a.variant} | ${a.after} | ${a.rows} | ${fmt(a.ms)} | ${a.buffers} | ${a.transactionsRead} | ${a.changesRead} |`),
  ];
  const flipped = alt.filter((a) => a.variant.startsWith('streamChanges query, with') && a.transactionsRead > 2 * a.rows + 10);
  if (flipped.length) {
    out.push('', `With exact estimates the streamChanges plan reads relay.transactions by seq first (after ${flipped.map((a) => a.after).join(', ')}):`, '```',
      excerpt(flipped[flipped.length - 1]!.text), '```');
  }
  const text = out.join('\n');
  console.log(`\n${text}`);
  const file = await writeResultsSection('Catch-up plan', text);
  console.log(`\nwritten to ${file}`);
}

runMain(main);
