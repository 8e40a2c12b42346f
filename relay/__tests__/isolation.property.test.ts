// Tenant, table and filter isolation by property: random tokens, filters and writes through one relay; every socket gets exactly what relay.changes and SQL say it should.
import fc from 'fast-check';
import type pg from 'pg';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { leakGuard, sleep, useTestDatabase } from '../../db/testing/index.js';
import { checkScenarios } from './support/fuzz-budget.js';
import { caughtUp, connect, delivered, startTestRelay, subscribeAnswer, token, type Frame, type TestClient, type TestRelay } from './support/relay-harness.js';
import { warmRelayPool } from './support/warm-pool.js';

const db = useTestDatabase();
let relay: TestRelay;

type ColType = 'int' | 'bigint' | 'numeric' | 'text' | 'timestamptz' | 'boolean';
interface TableSpec {
  name: string;
  wire: string;
  tenant: string | null;
  pk: string[];
  cols: Record<string, ColType>;
  /** Columns an UPDATE may set (never the tenant: moving rows between tenants has its own test below). */
  mutable: string[];
}

const TABLES: TableSpec[] = [
  {
    name: 'iso_a', wire: 'public.iso_a', tenant: 'tenant_id', pk: ['id'],
    cols: { id: 'int', tenant_id: 'text', n: 'int', big: 'bigint', amount: 'numeric', label: 'text', at: 'timestamptz', flag: 'boolean' },
    mutable: ['n', 'big', 'amount', 'label', 'at', 'flag'],
  },
  { name: 'iso_b', wire: 'public.iso_b', tenant: 'org', pk: ['k1', 'k2'], cols: { k1: 'int', k2: 'text', org: 'text', n: 'int', label: 'text' }, mutable: ['n', 'label'] },
  { name: 'iso_g', wire: 'public.iso_g', tenant: null, pk: ['id'], cols: { id: 'int', n: 'int', label: 'text', at: 'timestamptz' }, mutable: ['n', 'label', 'at'] },
];

/** Include inputs of bugs that have their own failing test below (left out by default so the property can find new ones meanwhile). */
const KNOWN = process.env.PGRELAY_FUZZ_KNOWN === '1';

// Values rows take (and filters compare with): ordinary, but chosen where comparisons go wrong easily.
const POOL: Record<ColType, readonly unknown[]> = {
  int: [-2, -1, 0, 1, 2, 3, 2147483647, -2147483648],
  bigint: ['-9223372036854775808', '-9007199254740993', '-1', '0', '1', '2', '9007199254740993', '9223372036854775807'],
  numeric: ['-1.5', '0', '0.00', '0.5', '1', '1.50', '2', '99999999999999999999.000001', '-0.000001'],
  text: ['', ' ', 'a', 'A', 'b', 'B', 'ab', 'a b', 'é', 'e', 'E\u0301', 'z', 'Z', '~', '\u{1F600}', '\uFFFD', 'ÿ', "o'neil", '"q"', '\\', '%'],
  timestamptz: ['1999-06-15T12:00:00+00:00', '2025-12-31T23:59:59.999999+00:00', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00.000001+00:00', '2026-01-01T10:30:00+00:00', '2100-02-28T00:00:00+00:00'],
  boolean: [true, false],
};
// Filter-only spellings of the same instants (offsets, a space, a bare date).
const TS_FILTER = [...POOL.timestamptz, '2026-01-01', '2026-01-01 00:00:00', '2026-01-01T02:00:00+02:00', '2026-01-01T00:00:00Z', '2025-12-31T19:00:00-05:00'];
const TENANTS = ['t1', 't2', 'T1', '7', '07', 'ü', "o'neil", 'a b', '\u{1F600}', 'x,y', 'tenant/../t1', ' ', ...(KNOWN ? ['*'] : [])];
const OPS = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'in'] as const;
type Op = (typeof OPS)[number];

const pick = <T,>(list: readonly T[], i: number): T => list[i % list.length]!;
const q = (s: string) => `'${s.replace(/'/g, "''")}'`;
const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;
const sqlType = (t: ColType) => (t === 'int' ? 'integer' : t);

// ---- scenario arbitraries: numbers resolved against the pools at run time, so shrinking stays simple ----

const tokenArb = fc.record({
  tenant: fc.nat(),
  asNumber: fc.boolean(),
  allTenants: fc.nat({ max: 2 }).map((n) => n === 0),
  withTenant: fc.boolean(),
  tables: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: fc.subarray(['iso_a', 'public.iso_a', 'iso_b', 'public.iso_g', 'nope'], { minLength: 1 }) }),
});
const conditionArb = fc.record({ col: fc.nat(), op: fc.constantFrom(...OPS), v: fc.nat(), form: fc.nat(), inVals: fc.array(fc.nat(), { maxLength: 4 }) });
const subArb = fc.record({
  table: fc.nat({ max: 6 }).map((n) => Math.floor(n / 2)), // 3 = an unwatched table
  filter: fc.array(conditionArb, { maxLength: 3 }),
  mode: fc.constantFrom('live', 'since', 'snapshot'),
  sinceBack: fc.nat({ max: 12 }), // the ring holds 4 transactions: older cursors catch up from relay.changes
});
const rowArb = fc.record({ tenant: fc.nat(), values: fc.array(fc.nat(), { minLength: 8, maxLength: 8 }) });
const statementArb = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('insert' as const), table: fc.nat({ max: 2 }), rows: fc.array(rowArb, { minLength: 1, maxLength: 4 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('update' as const), table: fc.nat({ max: 2 }), keys: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), set: rowArb, moveKey: fc.nat({ max: 9 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), table: fc.nat({ max: 2 }), keys: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), by: fc.nat({ max: 2 }), v: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), table: fc.nat({ max: 2 }) }) },
);
const scenarioArb = fc.record({
  tenants: fc.uniqueArray(fc.nat({ max: TENANTS.length - 1 }), { minLength: 2, maxLength: 4 }),
  seed: fc.array(fc.record({ table: fc.nat({ max: 2 }), row: rowArb }), { maxLength: 12 }),
  sockets: fc.array(fc.record({ token: tokenArb, subs: fc.array(subArb, { minLength: 1, maxLength: 3 }) }), { minLength: 2, maxLength: 6 }),
  transactions: fc.array(fc.record({ statements: fc.array(statementArb, { minLength: 1, maxLength: 3 }), rollback: fc.nat({ max: 9 }).map((n) => n === 0) }), { minLength: 2, maxLength: 12 }),
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer S> ? S : never;

// ---- filters: the wire form for the relay, and the same comparisons hand-written as typed SQL ----

type Cond = { col: string; type: ColType; op: Op; value: unknown };

function wireValue(type: ColType, choice: number, form: number): unknown {
  if (type === 'timestamptz') return pick(TS_FILTER, choice);
  const v = pick(POOL[type], choice);
  if (type === 'int') return [v, String(v), (v as number) >= 0 ? `00${v}` : String(v)][form % 3];
  if (type === 'bigint') return form % 2 === 0 || !Number.isSafeInteger(Number(v)) ? v : Number(v);
  if (type === 'numeric') return form % 2 === 0 || Math.abs(Number(v)) >= 1e15 ? v : Number(v);
  return v;
}

function conditionsOf(table: TableSpec, raw: Scenario['sockets'][number]['subs'][number]['filter']): Cond[] {
  const cols = Object.keys(table.cols);
  const seen = new Set<string>();
  const out: Cond[] = [];
  for (const c of raw) {
    const col = pick(cols, c.col);
    if (seen.has(`${col}/${c.op}`)) continue;
    seen.add(`${col}/${c.op}`);
    const type = table.cols[col]!;
    // An ordered comparison with null breaks relay.snapshot (see 'filter edge values' below): left out unless PGRELAY_FUZZ_KNOWN=1, so the property keeps looking for other bugs.
    const isNull = c.v % 10 === 9 && (KNOWN || c.op === 'eq' || c.op === 'neq');
    const value = c.op === 'in'
      ? c.inVals.map((v, i) => (v % 10 === 9 ? null : wireValue(type, v, c.form + i)))
      : isNull ? null : wireValue(type, c.v, c.form);
    out.push({ col, type, op: c.op, value });
  }
  return out;
}

function filterJson(conds: Cond[]): Record<string, Record<string, unknown>> | undefined {
  if (conds.length === 0) return undefined;
  const f: Record<string, Record<string, unknown>> = {};
  for (const c of conds) (f[c.col] ??= {})[c.op] = c.value;
  return f;
}

function literal(type: ColType, v: unknown): string {
  return v === null ? `null::${sqlType(type)}` : `${q(String(v))}::${sqlType(type)}`;
}

/** The filter as a typed WHERE over alias `r`: text compares in "C" collation, `eq null` means IS NULL, other comparisons with null never hold. */
function whereOf(conds: Cond[], alias = 'r'): string {
  const parts = conds.map(({ col, type, op, value }) => {
    const c = `${alias}.${ident(col)}`;
    if (op === 'in') {
      const list = value as unknown[];
      return list.length === 0 ? 'false' : `${c} = any (array[${list.map((v) => literal(type, v)).join(', ')}])`;
    }
    if (value === null) return op === 'eq' ? `${c} is null` : op === 'neq' ? `${c} is not null` : 'false';
    const sym = { eq: '=', neq: '<>', lt: '<', lte: '<=', gt: '>', gte: '>=' }[op];
    return type === 'text' ? `${c} collate "C" ${sym} (${literal(type, value)} collate "C")` : `${c} ${sym} ${literal(type, value)}`;
  });
  return parts.length === 0 ? 'true' : parts.map((p) => `(${p})`).join(' and ');
}

// ---- running one scenario ----

interface Expected { seq: number; op: string; pk: unknown; row: unknown; old: unknown }

interface SubPlan {
  id: string;
  table: TableSpec | undefined;
  requested: string;
  conds: Cond[];
  mode: 'live' | 'since' | 'snapshot';
  sinceBack: number;
  /** What the relay must answer: subscribed, or an error code. */
  answer: 'subscribed' | 'unknown_table' | 'table_not_allowed';
  seq?: number;
  snapshotKeys?: string[];
}

interface SocketPlan {
  claims: Record<string, unknown>;
  tenant: string | null;
  allTenants: boolean;
  allowed: (t: TableSpec) => boolean;
  subs: SubPlan[];
  client?: TestClient;
}

const qualify = (t: string) => (t.includes('.') ? t : `public.${t}`);
const keyOf = (table: TableSpec, row: Record<string, unknown>) => JSON.stringify(table.pk.map((k) => row[k]));

function planSockets(sc: Scenario, tenants: string[]): SocketPlan[] {
  return sc.sockets.map((s) => {
    const t = s.token;
    const tenantName = pick(tenants, t.tenant);
    const allTenants = t.allTenants;
    const tenant = allTenants && !t.withTenant ? null : tenantName;
    const claims: Record<string, unknown> = {};
    if (tenant !== null) claims.tenant_id = t.asNumber && /^[1-9]\d{0,8}$/.test(tenant) ? Number(tenant) : tenant;
    if (allTenants) claims.all_tenants = true;
    if (t.tables) claims.tables = t.tables;
    const granted = t.tables ? new Set(t.tables.map(qualify)) : null;
    const allowed = (table: TableSpec) => (granted === null || granted.has(table.wire)) && (table.tenant !== null || allTenants);
    const subs = s.subs.map((sub, j): SubPlan => {
      const table = sub.table < TABLES.length ? TABLES[sub.table] : undefined;
      return {
        id: `s${j}`,
        table,
        requested: table ? (j % 2 === 0 ? table.name : table.wire) : 'iso_nope',
        conds: table ? conditionsOf(table, sub.filter) : [],
        mode: sub.mode,
        sinceBack: sub.sinceBack,
        answer: !table ? 'unknown_table' : allowed(table) ? 'subscribed' : 'table_not_allowed',
      };
    });
    return { claims, tenant, allTenants, allowed, subs };
  });
}

function rowValues(table: TableSpec, raw: { tenant: number; values: number[] }, tenants: string[], extra: Record<string, unknown>): Record<string, unknown> {
  const row: Record<string, unknown> = { ...extra };
  if (table.tenant) row[table.tenant] = raw.tenant % 7 === 6 ? 'nobody' : pick(tenants, raw.tenant);
  table.mutable.forEach((col, i) => {
    const v = raw.values[i] ?? 0;
    row[col] = v % 6 === 5 ? null : pick(POOL[table.cols[col]!], v);
  });
  if (table.name === 'iso_a') row.secret = `secret of ${String(row.tenant_id)}`;
  return row;
}

async function dbPosition(c: pg.Client): Promise<number> {
  return Number((await c.query<{ p: string }>('select relay.position()::text as p')).rows[0]!.p);
}

const figures = { runs: 0, logCatchUps: 0, sockets: 0, subscriptions: 0, refusedSubscriptions: 0, filtered: 0, transactions: 0, changesChecked: 0, snapshotRows: 0, sqlFilterChecks: 0 };

async function runScenario(c: pg.Client, sc: Scenario): Promise<void> {
  const tenants = sc.tenants.map((i) => TENANTS[i]!);
  // reset: empty tables, then a seed transaction every mode of subscription can start after
  await c.query('truncate iso_a, iso_b, iso_g');
  let nextId = 1;
  const keys = new Map<string, number[]>(TABLES.map((t) => [t.name, []]));
  const insert = async (table: TableSpec, rows: Array<{ tenant: number; values: number[] }>) => {
    const objs = rows.map((r) => {
      const id = nextId++;
      keys.get(table.name)!.push(id);
      return rowValues(table, r, tenants, table.name === 'iso_b' ? { k1: id, k2: pick(POOL.text, id) } : { id });
    });
    await c.query(`insert into ${table.name} select * from jsonb_populate_recordset(null::${table.name}, $1::jsonb)`, [JSON.stringify(objs)]);
  };
  if (sc.seed.length > 0) {
    await c.query('begin');
    for (const s of sc.seed) await insert(TABLES[s.table]!, [s.row]);
    await c.query('commit');
  }
  await caughtUp(db, relay);
  const baseline = await dbPosition(c);

  const sockets = planSockets(sc, tenants);
  try {
    for (const s of sockets) {
      s.client = await connect(relay.url, await token(s.claims));
      expect(await s.client.next((f) => f.type === 'welcome')).toMatchObject({ tenant: s.tenant });
      for (const sub of s.subs) {
        const filter = filterJson(sub.conds);
        const msg: Record<string, unknown> = { type: 'subscribe', id: sub.id, table: sub.requested };
        if (filter) msg.filter = filter;
        if (sub.mode === 'since') msg.since = Math.max(0, baseline - sub.sinceBack);
        if (sub.mode === 'snapshot') msg.snapshot = true;
        s.client.send(msg);
        const answer = await s.client.next((f) => (f.type === 'subscribed' || f.type === 'error' || f.type === 'reset') && (f.id ?? f.sub) === sub.id);
        if (sub.answer === 'subscribed') {
          expect(answer, `socket ${JSON.stringify(s.claims)} subscribing ${JSON.stringify(msg)}`).toMatchObject({ type: 'subscribed' });
          sub.seq = answer.seq as number;
          if (sub.mode === 'since' && sub.sinceBack >= 4) figures.logCatchUps++;
          if (sub.mode === 'snapshot') {
            await s.client.until(() => s.client!.frames.some((f) => f.type === 'snapshot' && f.sub === sub.id && f.more === false), 10_000, 'the last snapshot page');
          }
        } else {
          expect(answer, `socket ${JSON.stringify(s.claims)} subscribing ${JSON.stringify(msg)}`).toMatchObject({ type: 'error', code: sub.answer });
          figures.refusedSubscriptions++;
        }
      }
    }

    // snapshots: the rows the relay sent, the rows relay.snapshot selects, and the rows a typed WHERE selects, all equal
    for (const s of sockets) {
      for (const sub of s.subs) {
        if (sub.answer !== 'subscribed' || !sub.table) continue;
        const t = sub.table;
        const tenantCond = s.allTenants || t.tenant === null ? 'true' : `r.${ident(t.tenant)} = ${q(s.tenant!)}`;
        const { rows: want } = await c.query(`select ${t.pk.map((k) => `r.${ident(k)}`).join(', ')} from ${t.name} r where ${tenantCond} and coalesce(${whereOf(sub.conds)}, false)`);
        const wantKeys = want.map((r) => keyOf(t, r)).sort();
        const filter = filterJson(sub.conds);
        const { rows: viaSnapshot } = await c.query(`select row from relay.snapshot($1::regclass, $2, $3::jsonb)`, [t.name, s.allTenants ? null : s.tenant, filter ? JSON.stringify(filter) : null]);
        expect(viaSnapshot.map((r) => keyOf(t, r.row)).sort(), `relay.snapshot vs typed WHERE for ${t.name} ${JSON.stringify(filter)}`).toEqual(wantKeys);
        figures.sqlFilterChecks++;
        if (sub.mode === 'snapshot') {
          const rows = s.client!.frames.filter((f) => f.type === 'snapshot' && f.sub === sub.id).flatMap((f) => f.rows as Array<Record<string, unknown>>);
          expect(rows.map((r) => keyOf(t, r)).sort(), `snapshot frames of ${t.name} ${JSON.stringify(filter)} for ${JSON.stringify(s.claims)}`).toEqual(wantKeys);
          for (const r of rows) {
            expect(r).not.toHaveProperty('secret');
            if (!s.allTenants && t.tenant) expect(r[t.tenant]).toBe(s.tenant);
          }
          figures.snapshotRows += rows.length;
        }
      }
    }

    // the writes: multi-row, multi-tenant, multi-table transactions, some rolled back
    for (const tx of sc.transactions) {
      await c.query('begin');
      for (const st of tx.statements) {
        const t = TABLES[st.table]!;
        const known = keys.get(t.name)!;
        const pkCol = t.pk[0]!;
        if (st.kind === 'insert') await insert(t, st.rows);
        else if (st.kind === 'update') {
          const ids = known.length ? st.keys.map((k) => pick(known, k)) : [];
          const row = rowValues(t, st.set, tenants, {});
          const sets = t.mutable.map((col) => `${ident(col)} = (jsonb_populate_record(null::${t.name}, $1::jsonb)).${ident(col)}`);
          // now and then the primary key moves too (filters then see the row leave under its old key)
          if (st.moveKey === 0 && t.name !== 'iso_b') {
            sets.push(`${ident(pkCol)} = ${ident(pkCol)} + 1000000`);
            for (const id of ids) known.push(id + 1_000_000);
          }
          await c.query(`update ${t.name} set ${sets.join(', ')} where ${ident(pkCol)} = any ($2::int[])`, [JSON.stringify(row), ids]);
        } else if (st.kind === 'delete') {
          if (st.by === 0 && t.tenant) await c.query(`delete from ${t.name} where ${ident(t.tenant)} = $1`, [pick(tenants, st.v)]);
          else if (st.by === 1) await c.query(`delete from ${t.name} where n < $1`, [pick(POOL.int, st.v)]);
          else await c.query(`delete from ${t.name} where ${ident(pkCol)} = any ($1::int[])`, [known.length ? st.keys.map((k) => pick(known, k)) : []]);
        } else {
          await c.query(`truncate ${t.name}`);
        }
      }
      await c.query(tx.rollback ? 'rollback' : 'commit');
      figures.transactions++;
    }
    await caughtUp(db, relay);
    const final = await dbPosition(c);
    for (const s of sockets) {
      s.client!.send({ type: 'ping' });
      await s.client!.next((f) => f.type === 'pong');
    }

    for (const s of sockets) {
      for (const sub of s.subs) {
        if (sub.answer !== 'subscribed' || !sub.table) continue;
        const t = sub.table;
        const where = whereOf(sub.conds);
        const { rows } = await c.query(
          `select t.seq::int as seq, c.id, c.op, c.pk, c.row, c.old,
                  c.op = 'truncate' or coalesce((select ${where} from jsonb_populate_record(null::${t.name}, c.row) r), false) as now_in,
                  c.op = 'update' and coalesce((select ${where} from jsonb_populate_record(null::${t.name}, c.row || coalesce(c.old, '{}'::jsonb)) r), false) as was_in
           from relay.changes c join relay.transactions t on t.txid = c.txid
           where c.schema_name = 'public' and c.table_name = $1 and t.seq > $2 and ($3::text is null or c.tenant = $3 or c.op = 'truncate')
           order by t.seq, c.id`,
          [t.name, sub.seq, s.allTenants ? null : s.tenant],
        );
        const expected: Expected[] = [];
        for (const r of rows) {
          if (r.op === 'truncate') expected.push({ seq: r.seq, op: 'truncate', pk: null, row: null, old: null });
          else if (r.op !== 'update') {
            if (r.now_in) expected.push({ seq: r.seq, op: r.op, pk: r.pk, row: r.row, old: null });
          } else if (r.now_in && r.was_in) expected.push({ seq: r.seq, op: 'update', pk: r.pk, row: r.row, old: r.old });
          else if (r.now_in) expected.push({ seq: r.seq, op: 'insert', pk: r.pk, row: r.row, old: null });
          else if (r.was_in) {
            const before = { ...r.row, ...r.old };
            expected.push({ seq: r.seq, op: 'delete', pk: Object.fromEntries(t.pk.map((k) => [k, before[k]])), row: before, old: null });
          }
        }
        const client = s.client!;
        const received = () => client.txs(sub.id).flatMap((f: Frame) => (f.changes as Array<Record<string, unknown>>).map((ch) => ({ f, ch })));
        await client.until(() => received().length >= expected.length, 5_000, `${expected.length} changes on ${sub.id}`).catch(() => undefined);
        await sleep(20);
        const got = received();
        const label = `socket ${JSON.stringify(s.claims)} sub ${sub.id} ${t.wire} ${sub.mode} ${JSON.stringify(filterJson(sub.conds))}`;
        // isolation, stated on its own so a failure says which promise broke
        for (const { f, ch } of got) {
          expect(ch.table, label).toBe(t.wire);
          expect(s.allowed(t), label).toBe(true);
          expect(f.seq, label).toBeGreaterThan(sub.seq!);
          if (!s.allTenants && t.tenant && ch.op !== 'truncate') {
            expect((ch.row as Record<string, unknown>)[t.tenant], `${label}: a row of another tenant`).toBe(s.tenant);
            const old = ch.old as Record<string, unknown> | null;
            if (old && t.tenant in old) expect(old[t.tenant], `${label}: old values of another tenant`).toBe(s.tenant);
          }
          if (ch.row) expect(ch.row, label).not.toHaveProperty('secret');
        }
        // frames: one per transaction (split frames say more), in seq order
        const frames = client.txs(sub.id);
        for (let i = 1; i < frames.length; i++) {
          const prev = frames[i - 1]!;
          if (prev.more === true) expect(frames[i]!.seq, label).toBe(prev.seq);
          else expect(frames[i]!.seq, label).toBeGreaterThan(prev.seq);
        }
        expect(got.map(({ f, ch }) => ({ seq: f.seq, op: ch.op, pk: ch.pk, row: ch.row, old: ch.old ?? null })), label).toEqual(expected);
        figures.changesChecked += expected.length;
        // the final state: relay.snapshot's filter and the typed WHERE agree
        const filter = filterJson(sub.conds);
        if (filter) {
          const tenantCond = s.allTenants || t.tenant === null ? 'true' : `r.${ident(t.tenant)} = ${q(s.tenant!)}`;
          const { rows: want } = await c.query(`select ${t.pk.map((k) => `r.${ident(k)}`).join(', ')} from ${t.name} r where ${tenantCond} and coalesce(${where}, false)`);
          const { rows: viaSnapshot } = await c.query(`select row from relay.snapshot($1::regclass, $2, $3::jsonb)`, [t.name, s.allTenants ? null : s.tenant, JSON.stringify(filter)]);
          expect(viaSnapshot.map((r) => keyOf(t, r.row)).sort(), `relay.snapshot vs typed WHERE, ${label}`).toEqual(want.map((r) => keyOf(t, r)).sort());
          figures.sqlFilterChecks++;
          figures.filtered++;
        }
        figures.subscriptions++;
      }
    }
    figures.sockets += sockets.length;
  } finally {
    for (const s of sockets) await s.client?.close();
  }
}

beforeAll(async () => {
  await db.query(`
    create table iso_a (id int primary key, tenant_id text not null, n int, big bigint, amount numeric, label text, at timestamptz, flag boolean, secret text);
    create table iso_b (k1 int, k2 text, org text not null, n int, label text, primary key (k1, k2));
    create table iso_g (id int primary key, n int, label text, at timestamptz);
    create table iso_e (id int primary key, tenant_id text not null, n int, big bigint, amount numeric, at timestamptz, label text);
    select relay.watch('iso_e', 'tenant_id');
    select relay.watch('iso_a', 'tenant_id', '{secret}');
    select relay.watch('iso_b', 'org');
    select relay.watch('iso_g', null);
  `);
  // a small ring, so that resumed subscriptions also catch up from the log (the tenant-scoped read of relay.changes)
  relay = await startTestRelay(db, { RELAY_HISTORY_TX: '4' });
});
beforeEach(() => warmRelayPool(relay.url, 'iso_a'));
leakGuard(() => db.name);

describe('isolation by property', () => {
  it('every socket receives exactly its tenant, tables and filter, as relay.changes and SQL say', async () => {
    await checkScenarios(db, 'isolation', { runs: 30, timeLimitMs: 60_000, figures }, scenarioArb, (c, sc) => runScenario(c, sc));
  }, 180_000);
});

// ---- focused cases: each pins one way isolation or filtering went wrong while exploring ----

/** Waits until the relay has published everything committed, and each client has read it. */
async function settle(...clients: TestClient[]): Promise<void> {
  await delivered(db, relay, clients);
  await sleep(30);
}

const rowsOf = (c: TestClient, sub?: string) => c.txs(sub).flatMap((f) => f.changes as Array<Record<string, any>>);

describe('isolation: focused cases', () => {
  it('a token whose tenant is "*" sees only rows of tenant "*", not every tenant', async () => {
    const star = await connect(relay.url, await token({ tenant_id: '*' }));
    await db.query(`insert into iso_a (id, tenant_id, label) values (9000001, 'star-other', 'not yours')`);
    expect(await subscribeAnswer(star, 'live', 'iso_a')).toMatchObject({ type: 'subscribed' });
    expect(await subscribeAnswer(star, 'snap', 'iso_a', { snapshot: true })).toMatchObject({ type: 'subscribed' });
    await db.query(`insert into iso_a (id, tenant_id, label) values (9000002, '*', 'mine'), (9000003, 'star-other', 'not yours')`);
    await settle(star);
    const snapshot = star.frames.filter((f) => f.type === 'snapshot').flatMap((f) => f.rows as Array<Record<string, unknown>>);
    const live = rowsOf(star, 'live');
    await star.close();
    expect(snapshot.map((r) => r.tenant_id).filter((t) => t !== '*'), 'snapshot rows of other tenants').toEqual([]);
    expect(live.map((ch) => ch.row.tenant_id).filter((t) => t !== '*'), 'live rows of other tenants').toEqual([]);
    expect(live.map((ch) => ch.row.id)).toEqual([9000002]);
  });

  it('a subscription id holding U+001F never receives another tenant\'s frames', async () => {
    // the victim's tenant ends with the character the relay's topic names use as a separator
    const victim = await connect(relay.url, await token({ tenant_id: 'v\u001f' }));
    const attacker = await connect(relay.url, await token({ tenant_id: 'v' }));
    expect(await subscribeAnswer(victim, 'feed', 'iso_a')).toMatchObject({ type: 'subscribed' });
    expect(await subscribeAnswer(attacker, '\u001ffeed', 'iso_a')).toMatchObject({ type: 'subscribed' });
    await db.query(`insert into iso_a (id, tenant_id, label) values (9000011, 'v\u001f', 'the victim''s row')`);
    await settle(victim, attacker);
    const stolen = attacker.frames.filter((f) => f.type === 'tx');
    await victim.close();
    await attacker.close();
    expect(stolen, 'frames the attacker received').toEqual([]);
  });

  async function moveRow(id: number): Promise<{ toA: Array<Record<string, any>>; toB: Array<Record<string, any>> }> {
    await db.query(`insert into iso_a (id, tenant_id, label, n) values ($1, 'mv-a', 'private to a', 1)`, [id]);
    // live subscriptions start at the relay's position: let the insert be behind it
    await caughtUp(db, relay);
    const a = await connect(relay.url, await token({ tenant_id: 'mv-a' }));
    const b = await connect(relay.url, await token({ tenant_id: 'mv-b' }));
    await subscribeAnswer(a, 'o', 'iso_a');
    await subscribeAnswer(b, 'o', 'iso_a');
    await db.query(`update iso_a set tenant_id = 'mv-b', label = 'now b''s' where id = $1`, [id]);
    await settle(a, b);
    const moved = { toA: rowsOf(a), toB: rowsOf(b) };
    await a.close();
    await b.close();
    return moved;
  }

  it('an UPDATE that moves a row to another tenant sends the new tenant none of the old tenant\'s values', async () => {
    const { toB } = await moveRow(9000021);
    expect(JSON.stringify(toB), 'what tenant mv-b received').not.toMatch(/mv-a|private to a/);
  });

  it('an UPDATE that moves a row to another tenant tells the old tenant the row left, as a filter would', async () => {
    const { toA } = await moveRow(9000022);
    expect(toA.map((ch) => [ch.op, ch.pk]), 'what tenant mv-a received').toEqual([['delete', { id: 9000022 }]]);
  });

  it('two tables whose names would print alike ("iso.b".c and iso."b.c") cannot be watched', async () => {
    await db.query(`
      create schema "iso.b"; create schema iso;
      create table "iso.b".c (id int primary key, tenant_id text not null, only_in_dotted_schema text);
      create table iso."b.c" (id int primary key, tenant_id text not null, only_in_dotted_table text);
    `);
    for (const t of ['"iso.b".c', 'iso."b.c"']) {
      await expect(db.query(`select relay.watch($1, 'tenant_id')`, [t])).rejects.toMatchObject({ code: 'PR010' });
    }
  });
});

// Filter values where JavaScript and Postgres easily disagree. Postgres decides: the relay's live filter and its snapshot must select
// what a typed WHERE selects; a value Postgres cannot compare must be refused (bad_filter), or at least be served consistently.
const EDGE: Array<{ name: string; rows: Array<Record<string, unknown>>; conds: Cond[] }> = [
  { name: 'numeric NaN sorts above every number', rows: [{ amount: 'NaN' }, { amount: '5' }, { amount: '0' }], conds: [{ col: 'amount', type: 'numeric', op: 'gt', value: 1 }] },
  { name: 'numeric Infinity and -Infinity', rows: [{ amount: 'Infinity' }, { amount: '-Infinity' }, { amount: '5' }], conds: [{ col: 'amount', type: 'numeric', op: 'gte', value: '1' }] },
  { name: 'timestamptz infinity and -infinity', rows: [{ at: 'infinity' }, { at: '-infinity' }, { at: '2026-06-01T00:00:00Z' }], conds: [{ col: 'at', type: 'timestamptz', op: 'gt', value: '2026-01-01T00:00:00Z' }] },
  { name: 'timestamptz in the years 1-99', rows: [{ at: '0050-01-01T00:00:00Z' }, { at: '1950-01-01T00:00:00Z' }], conds: [{ col: 'at', type: 'timestamptz', op: 'eq', value: '1950-01-01T00:00:00Z' }] },
  { name: 'timestamptz after the year 9999', rows: [{ at: '10000-01-01T00:00:00Z' }, { at: '2026-01-01T00:00:00Z' }], conds: [{ col: 'at', type: 'timestamptz', op: 'gt', value: '2026-06-01T00:00:00Z' }] },
  { name: 'numeric compared with the JSON number 1e21', rows: [{ amount: '123456' }, { amount: '10000000000000000000000' }], conds: [{ col: 'amount', type: 'numeric', op: 'gt', value: 1e21 }] },
  { name: 'numeric compared with the JSON number 1e-21', rows: [{ amount: '0' }, { amount: '0.000000000000000000002' }], conds: [{ col: 'amount', type: 'numeric', op: 'lt', value: 1e-21 }] },
  { name: 'an ordered comparison with null selects nothing', rows: [{ n: 1 }, { n: null }], conds: [{ col: 'n', type: 'int', op: 'gt', value: null }] },
  { name: 'an integer filter value beyond the column type', rows: [{ n: 5 }], conds: [{ col: 'n', type: 'int', op: 'lt', value: '99999999999' }] },
  { name: 'a timestamp that does not exist (February 30)', rows: [{ at: '2026-03-01T12:00:00Z' }], conds: [{ col: 'at', type: 'timestamptz', op: 'lt', value: '2026-02-30T00:00:00Z' }] },
  { name: 'hour 24 is the next midnight', rows: [{ at: '2026-01-02T00:00:00Z' }, { at: '2026-01-01T23:00:00Z' }], conds: [{ col: 'at', type: 'timestamptz', op: 'gte', value: '2026-01-01T24:00:00Z' }] },
  { name: 'text in code-point order', rows: [{ label: 'B' }, { label: 'a' }, { label: '\u{1F600}' }, { label: '\uFFFD' }, { label: 'Z' }], conds: [{ col: 'label', type: 'text', op: 'gt', value: 'Z' }, { col: 'label', type: 'text', op: 'lt', value: '\u{1F600}' }] },
  { name: 'bigint beyond 2^53', rows: [{ big: '9007199254740993' }, { big: '9007199254740992' }], conds: [{ col: 'big', type: 'bigint', op: 'eq', value: '9007199254740993' }] },
];

describe('filter edge values: the relay selects what Postgres selects', () => {
  it.each(EDGE.map((e, i) => [e.name, i] as const))('%s', async (_name, i) => {
    const { rows, conds } = EDGE[i]!;
    const tenant = `edge-${i}`;
    const filter = filterJson(conds)!;
    const c = await connect(relay.url, await token({ tenant_id: tenant }));
    try {
      const live = await subscribeAnswer(c, 'live', 'iso_e', { filter });
      const objs = rows.map((r, j) => ({ id: 100 * i + j + 1, tenant_id: tenant, ...r }));
      await db.query(`insert into iso_e select * from jsonb_populate_recordset(null::iso_e, $1::jsonb)`, [JSON.stringify(objs)]);
      await settle(c);
      const oracle = await db.query(`set timezone = 'UTC'; select id from iso_e r where tenant_id = ${q(tenant)} and coalesce(${whereOf(conds)}, false) order by id`)
        .then((r) => (r as unknown as pg.QueryResult[])[1]!.rows.map((x) => x.id as number), (err: Error) => `refused by Postgres: ${err.message}`);
      if (live.type === 'error') {
        expect(live.code).toBe('bad_filter');
        expect(oracle, 'the relay refused a filter Postgres evaluates').toMatch(/^refused/);
        return;
      }
      const liveIds = rowsOf(c, 'live').map((ch) => ch.row.id as number).sort((x, y) => x - y);
      const snap = await subscribeAnswer(c, 'snap', 'iso_e', { filter, snapshot: true });
      expect(snap, `snapshot with ${JSON.stringify(filter)}`).toMatchObject({ type: 'subscribed' });
      await c.until(() => c.frames.some((f) => f.type === 'snapshot' && f.sub === 'snap' && f.more === false), 5000, 'the snapshot');
      const snapIds = c.frames.filter((f) => f.type === 'snapshot' && f.sub === 'snap').flatMap((f) => (f.rows as Array<{ id: number }>).map((r) => r.id)).sort((x, y) => x - y);
      if (typeof oracle === 'string') {
        // accepted what Postgres cannot compare: then at least live and snapshot must agree
        expect(snapIds, `${oracle}; live and snapshot disagree`).toEqual(liveIds);
      } else {
        expect({ live: liveIds, snapshot: snapIds }).toEqual({ live: oracle, snapshot: oracle });
      }
    } finally {
      await c.close();
    }
  });
});
