// Reading the log back: all transactions after a seq, one transaction, and one tenant's changes of some tables.
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { createKysely, createPool, type RelayDb } from '../kysely.js';
import { currentPosition, prunedThrough, readTransaction, readTransactions, streamChanges, type LoggedTransaction } from '../log-reader.js';
import { leakGuard, useTestDatabase } from '../testing/index.js';

const db = useTestDatabase();
let rdb: RelayDb;

beforeAll(async () => {
  await db.query(`
    create table a (id int primary key, tenant text, v int);
    create table b (id int primary key, tenant text, v int);
    create table c (id int primary key, v int);
    select relay.watch('a', 'tenant'); select relay.watch('b', 'tenant'); select relay.watch('c', null);
  `);
  for (let i = 1; i <= 30; i++) {
    await db.query(`insert into a values (${i}, 't${i % 3}', ${i}); insert into b values (${i}, 't${(i + 1) % 3}', ${i}); insert into c values (${i}, ${i})`);
  }
  await db.query(`truncate b`);
  // one tick numbers all 31 transactions, in the order they committed
  await db.tick();
  rdb = createKysely(createPool(db.url, { max: 1 }));
  await currentPosition(rdb); // the pooled connection lives for the whole file, not one test
});
afterAll(async () => {
  await rdb.destroy();
});
leakGuard(() => db.name);

async function collect(it: AsyncIterable<LoggedTransaction>): Promise<LoggedTransaction[]> {
  const out: LoggedTransaction[] = [];
  for await (const tx of it) out.push(tx);
  return out;
}

describe('log reader', () => {
  it('reads every transaction after a seq, in order, with all changes', async () => {
    const txs = await readTransactions(rdb, 10, { limit: 5 });
    expect(txs.map((t) => t.seq)).toEqual([11, 12, 13, 14, 15]);
    expect(txs[0]!.changes.map((c) => c.table)).toEqual(['public.a', 'public.b', 'public.c']);
    expect(txs[0]!.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/);
    const c = await db.connect();
    await c.query(`set timezone = 'UTC'`);
    const { rows } = await c.query(`select to_json(committed_at) #>> '{}' as at from relay.transactions where seq = 11`);
    await c.end();
    expect(txs[0]!.at).toBe(rows[0]!.at);
    expect(await readTransaction(rdb, 31)).toMatchObject({ seq: 31, changes: [{ op: 'truncate', tenant: null, table: 'public.b' }] });
    expect(await readTransaction(rdb, 999)).toBeUndefined();
    expect(await currentPosition(rdb)).toBe(31);
    expect(await prunedThrough(rdb)).toBe(0);
  });

  it("streams one tenant's changes of some tables, truncates included, within (after, upTo]", async () => {
    const txs = await collect(streamChanges(rdb, { tenant: 't1', tables: ['public.a', 'public.b'] }, 20, 31, 3));
    const flat = txs.flatMap((t) => t.changes.map((c) => [t.seq, c.table, c.tenant, c.op]));
    const expected: unknown[] = [];
    for (let i = 21; i <= 30; i++) {
      if (i % 3 === 1) expected.push([i, 'public.a', 't1', 'insert']);
      if ((i + 1) % 3 === 1) expected.push([i, 'public.b', 't1', 'insert']);
    }
    expected.push([31, 'public.b', null, 'truncate']);
    expect(flat).toEqual(expected);
    const upTo = await collect(streamChanges(rdb, { tenant: 't1', tables: ['public.a'] }, 0, 5));
    expect(upTo.map((t) => t.seq)).toEqual([1, 4]);
  });

  it('streams every tenant (and tables without tenants) for an all-tenants scope', async () => {
    const txs = await collect(streamChanges(rdb, { tenant: null, tables: ['public.c'] }, 25, 31));
    expect(txs.map((t) => t.seq)).toEqual([26, 27, 28, 29, 30]);
    expect(txs.every((t) => t.changes.length === 1 && t.changes[0]!.tenant === null)).toBe(true);
  });
});
