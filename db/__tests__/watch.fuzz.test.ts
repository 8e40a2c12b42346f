// relay.watch with hostile schema, table and column names: it captures with the exact names or refuses with the documented SQLSTATE; never injection, never a table whose writes break.
import fc from 'fast-check';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlState } from '../sqlstate.js';
import { leakGuard, sleep, until, useTestDatabase } from '../testing/index.js';

const db = useTestDatabase();
const scale = Number(process.env.PGRELAY_FUZZ_SCALE ?? 1);
const seed = process.env.PGRELAY_FUZZ_SEED ? { seed: Number(process.env.PGRELAY_FUZZ_SEED) } : {};

const HOSTILE = [
  'a"b', "a'b", 'a b', ' lead', 'trail ', 'é', '\u{1F600}', ';drop table canary;--', '"; drop table canary; --', "'); drop table canary; --", 'x"); create table pwned (); --',
  'select', 'from', 'user', 'table', 'order', 'group', 'Select', '"', '""', "'", '\\', '$1', '%s', '%I', '%L', 'a.b', '.', 'public.x', 'MiXeD', 'UPPER', 'lower',
  'x'.repeat(63), 'y'.repeat(70), 'é'.repeat(40), '{a,b}', 'NULL', 'null', 'a}b', '{', '}', ',', 'a,b', 'relay_rows', 'relay_old', 'relay_new', 'tg_argv', 'row', 'old', 'pk', 'op',
  'tenant', 'id', 'oid', 'xmin_', 'a\tb', 'a\nb', '\u200b', '\u202e', 'ﬀ', '+', '-', '*', '(', ')', '[0]', '1', '01', ' ',
];
const nameArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 }).filter((s) => !s.includes('\u0000')) },
);

/** What Postgres makes of an identifier: at most 63 bytes, cut at a character boundary. */
function pgName(s: string): string {
  if (Buffer.byteLength(s) <= 63) return s;
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch) > 63) break;
    out += ch;
  }
  return out;
}
const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

const caseArb = fc.record({
  schema: fc.option(nameArb, { freq: 3 }),
  table: nameArb,
  columns: fc.uniqueArray(nameArb, { minLength: 4, maxLength: 4, selector: (s) => pgName(s) }),
  hasPk: fc.nat({ max: 19 }).map((n) => n !== 0),
  tenant: fc.constantFrom('column', 'none', 'missing', 'missing-hostile'),
  exclude: fc.constantFrom('none', 'column', 'missing', 'pk', 'tenant'),
  value: nameArb,
});
type Case = typeof caseArb extends fc.Arbitrary<infer C> ? C : never;

let conn: pg.Client;
let listener: pg.Client;
const notes: string[] = [];
const figures = { cases: 0, watched: 0, refused: {} as Record<string, number> };

beforeAll(async () => {
  await db.query(`create table canary (id int primary key, note text); insert into canary values (1, 'alive')`);
});
afterAll(() => console.log(`[security-suite] watch ${JSON.stringify(figures)}`));

/** Runs `fn` with the writing session and a LISTEN session of its own, both ended afterwards (the leak check is on). */
async function withClients(fn: () => Promise<void>): Promise<void> {
  conn = await db.connect();
  listener = await db.connect({ application_name: 'watch-fuzz-listener' });
  try {
    listener.on('notification', (m) => m.channel === 'relay' && notes.push(m.payload!));
    await listener.query('listen relay');
    await fn();
  } finally {
    await conn.query('rollback').catch(() => undefined);
    await listener.end();
    await conn.end();
  }
}
leakGuard(() => db.name);

async function sqlstate(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

/** Creates the table, watches it, writes to it, and checks the log; drops everything again. */
async function runCase(c: Case): Promise<void> {
  const [pk, tenantCol, other, secret] = c.columns as [string, string, string, string];
  const schema = c.schema ?? 'public';
  const qualified = `${ident(schema)}.${ident(c.table)}`;
  figures.cases++;
  if (c.schema !== null) {
    const code = await sqlstate(conn.query(`create schema ${ident(schema)}`));
    // a schema name that collides with an existing one (public, relay, pg_*) is not what this test is about
    if (code !== undefined) return;
  }
  try {
    const create = await sqlstate(conn.query(`create table ${qualified} (${ident(pk)} int ${c.hasPk ? 'primary key' : ''}, ${ident(tenantCol)} text, ${ident(other)} text, ${ident(secret)} text)`));
    if (create !== undefined) {
      // only names Postgres itself refuses (e.g. a table name taken by a type) end here
      expect(['42P07', '42710', '42939'], `create table ${qualified}`).toContain(create);
      return;
    }
    const tenantArg = c.tenant === 'column' ? tenantCol : c.tenant === 'none' ? null : c.tenant === 'missing' ? 'no_such_column' : `${other}${pk}"x`;
    const excludeArg = c.exclude === 'none' ? [] : c.exclude === 'column' ? [secret] : c.exclude === 'missing' ? ['no such column'] : c.exclude === 'pk' ? [pk] : [tenantCol];
    const tenantMissing = tenantArg !== null && ![pk, tenantCol, other, secret].map(pgName).includes(pgName(tenantArg));
    const tenantAttr = tenantArg === null ? null : pgName(tenantArg);
    // the documented refusals, in the order relay.watch checks them
    const expected = schema.includes('.') || c.table.includes('.') ? SqlState.DottedName
      : !c.hasPk ? SqlState.NoPrimaryKey
      : tenantMissing ? SqlState.UnknownTenantColumn
      : c.exclude === 'missing' ? SqlState.UnknownExcludedColumn
      : c.exclude === 'pk' || (c.exclude === 'tenant' && tenantAttr === pgName(tenantCol)) ? SqlState.ExcludedKeyColumn
      : undefined;
    const watched = await sqlstate(conn.query(`select relay.watch($1::regclass, $2::name, $3::name[])`, [qualified, tenantArg, excludeArg]));
    expect(watched, `relay.watch(${qualified}, ${JSON.stringify(tenantArg)}, ${JSON.stringify(excludeArg)})`).toBe(expected);
    if (watched !== undefined) figures.refused[watched] = (figures.refused[watched] ?? 0) + 1;
    else figures.watched++;

    // whatever relay.watch said, writes to the table commit
    notes.length = 0;
    const { rows: [{ seq: before }] } = await conn.query(`select relay.position() as seq`);
    await conn.query('begin');
    await conn.query(`insert into ${qualified} values (1, $1, $2, 's3cret'), (2, 't2', 'x', 's3cret')`, [c.value, c.value]);
    await conn.query(`update ${qualified} set ${ident(other)} = $1 where ${ident(pk)} = 1`, [`${c.value}!`]);
    await conn.query(`delete from ${qualified} where ${ident(pk)} = 2`);
    await conn.query('commit');
    await conn.query(`truncate ${qualified}`);
    const { rows: left } = await conn.query(`select count(*)::int as n from ${qualified}`);
    expect(left[0].n).toBe(0);
    await conn.query('begin isolation level repeatable read');
    await conn.query('select relay.tick()');
    await conn.query('commit');

    const { rows: changes } = await conn.query(
      `select c.schema_name, c.table_name, c.op, c.tenant, c.pk, c.row, c.old from relay.changes c join relay.transactions t using (txid) where t.seq > $1 order by t.seq, c.id`, [before]);
    if (watched !== undefined) {
      expect(changes, 'a refused table is not captured').toEqual([]);
      return;
    }
    const names = { schema: pgName(schema), table: pgName(c.table), pk: pgName(pk), tenant: pgName(tenantCol), other: pgName(other), secret: pgName(secret) };
    expect(changes.map((r) => r.op)).toEqual(['insert', 'insert', 'update', 'delete', 'truncate']);
    for (const r of changes) {
      expect([r.schema_name, r.table_name], 'exact names').toEqual([names.schema, names.table]);
      if (r.op === 'truncate') continue;
      const excluded = new Set(excludeArg.map(pgName));
      const cols = [names.pk, names.tenant, names.other, names.secret].filter((n) => !excluded.has(n)).sort();
      expect(Object.keys(r.row).sort(), 'exact column names, excluded ones removed').toEqual(cols);
      expect(r.pk).toEqual({ [names.pk]: r.row[names.pk] });
      expect(r.tenant).toBe(tenantArg === null ? null : r.row[tenantAttr!] ?? null);
    }
    expect(changes[0].row[names.other]).toBe(c.value);
    expect(changes[2].old).toEqual({ [names.other]: c.value });
    // the NOTIFY payloads are JSON that names the table exactly
    // delivered asynchronously: wait for both (a loaded machine can take a while), then a moment for any extra one
    await until(() => notes.length >= 2, { what: 'both NOTIFY payloads', timeoutMs: 5000, intervalMs: 10 });
    await sleep(20);
    const payloads = notes.map((n) => JSON.parse(n) as { changes?: Array<{ table: string }> });
    expect(payloads.length).toBe(2);
    for (const p of payloads) for (const ch of p.changes ?? []) expect(ch.table).toBe(`${names.schema}.${names.table}`);
    const { rows: w } = await conn.query(`select capturing, "table" from relay.watched where schema_name = $1 and table_name = $2`, [names.schema, names.table]);
    expect(w).toEqual([{ capturing: true, table: `${names.schema}.${names.table}` }]);
  } finally {
    // a failed write leaves its transaction open: end it, so the error shown is the first one
    await conn.query('rollback');
    await conn.query(`drop table if exists ${qualified}`);
    if (c.schema !== null) await conn.query(`drop schema if exists ${ident(schema)} cascade`);
    const { rows } = await conn.query(`select (select note from canary where id = 1) as canary, to_regclass('public.pwned') is null as clean, (select count(*)::int from relay.watched) as watches`);
    expect(rows[0], 'no injection, and dropped tables leave relay.watched').toEqual({ canary: 'alive', clean: true, watches: 0 });
  }
}

describe('relay.watch with hostile names', () => {
  it('each hostile name alone, in turn as schema and table name and in every column role', async () => {
    const base = ['id', 'tenant_id', 'note', 'secret'];
    await withClients(async () => {
      for (const [i, name] of HOSTILE.entries()) {
        const role = i % 5;
        if (role === 4) {
          await runCase({ schema: name, table: name, columns: base, hasPk: true, tenant: 'column', exclude: 'column', value: name });
          continue;
        }
        const columns = base.map((b, j) => (j === role ? name : b));
        if (new Set(columns.map(pgName)).size === 4) await runCase({ schema: null, table: `t_${role}`, columns, hasPk: true, tenant: 'column', exclude: 'column', value: name });
      }
    });
  }, 60_000);

  it('random combinations: capture with exact names, or the documented SQLSTATE', async () => {
    await withClients(() => fc.assert(fc.asyncProperty(caseArb, runCase), { numRuns: Math.round(100 * scale), ...seed }));
  }, 60_000);

  it('a regclass argument that is not a quoted name is refused by Postgres, not run', async () => {
    await withClients(async () => {
    for (const raw of ['canary; drop table canary', "canary'); drop table canary; --", 'canary"', '"canary', 'no.such.table.here', '', ' ', 'pg_catalog.pg_authid', 'relay.changes']) {
      const code = await sqlstate(conn.query(`select relay.watch($1::regclass, null)`, [raw]));
      expect(['42P01', '42602', '42601', '3F000', '42501', 'PR001', 'PR005', 'PR010', '22023'], `relay.watch(${JSON.stringify(raw)}::regclass)`).toContain(code);
      figures.cases++;
    }
    expect((await conn.query(`select note from canary`)).rows).toEqual([{ note: 'alive' }]);
    });
  });
});
