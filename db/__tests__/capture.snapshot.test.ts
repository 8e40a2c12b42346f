// relay.snapshot: the tenant's rows and the exact position they were read at, consistent under concurrent writes.
import { beforeAll, describe, expect, it } from 'vitest';
import { SqlState } from '../sqlstate.js';
import { keepWriting, leakGuard, sleep, useTestDatabase } from '../testing/index.js';
import { Ticker } from '../ticker/ticker.js';
import { applyChange, sorted, type JsonRow } from './support/replay.js';

const db = useTestDatabase();
leakGuard(() => db.name);

beforeAll(async () => {
  await db.query(`
    create table stock (id int primary key, tenant text not null, sku text, qty int not null, price numeric(8,2), secret text);
    insert into stock select g, 't' || (g % 3), 'sku-' || g, g % 50, g / 10.0, 'hidden' from generate_series(1, 300) g;
    select relay.watch('stock', 'tenant', '{secret}');
  `);
});


describe('relay.snapshot', () => {
  it('plus every change above its position equals the table at the end, under 8 writers and a ticker', async () => {
    // with a ticker running, snapshots keep meeting transactions that committed after its last tick
    const ticker = new Ticker({ databaseUrl: db.url, log: { info: () => undefined, warn: () => undefined } });
    ticker.start();
    const writers = Array.from({ length: 8 }, () => keepWriting(db, async (c, i) => {
      const id = 1 + Math.floor(Math.random() * 400);
      await c.query('begin');
      await c.query(`insert into stock (id, tenant, sku, qty, price) values ($1, 't' || ($1 % 3), 'n', 1, 1)
                     on conflict (id) do update set qty = stock.qty + 1`, [id]);
      if (i % 7 === 0) await c.query(`delete from stock where id = $1`, [1 + Math.floor(Math.random() * 400)]);
      await sleep(Math.random() * 3);
      await c.query(i % 11 === 0 ? 'rollback' : 'commit');
    }));
    const snaps: Array<{ seq: number; rows: Map<string, JsonRow> }> = [];
    const reader = await db.connect();
    try {
      for (let k = 0; k < 12; k++) {
        await sleep(100);
        const { rows } = await reader.query<{ seq: string; row: JsonRow }>(`select seq, row from relay.snapshot('stock', 't1')`);
        expect(new Set(rows.map((r) => r.seq)).size).toBe(1);
        expect(rows.every((r) => r.row.tenant === 't1' && !('secret' in r.row))).toBe(true);
        snaps.push({ seq: Number(rows[0]!.seq), rows: new Map(rows.map((r) => [JSON.stringify([r.row.id]), r.row])) });
      }
    } finally {
      await Promise.all(writers.map((w) => w.stop()));
      await ticker.close();
    }
    await db.tick();
    const { rows: finalRows } = await reader.query<{ row: JsonRow }>(`select row from relay.snapshot('stock', 't1')`);
    const expected = sorted(new Map(finalRows.map((r) => [JSON.stringify([r.row.id]), r.row])));
    const { rows: log } = await reader.query(`select t.seq::int as seq, c.op, c.pk, c.row, c.old from relay.changes c join relay.transactions t using (txid)
      where c.tenant = 't1' or c.tenant is null order by t.seq, c.id`);
    await reader.end();
    expect(new Set(snaps.map((s) => s.seq)).size).toBeGreaterThan(3);
    for (const snap of snaps) {
      const rows = new Map(snap.rows);
      for (const ch of log.filter((l: any) => l.seq > snap.seq)) applyChange(rows, ch as any, ['id']);
      expect(sorted(rows)).toEqual(expected);
    }
  }, 60_000);

  it('applies filters with the column types, as SQL would', async () => {
    const q = async (filter: object) => (await db.query(`select row->>'id' as id from relay.snapshot('stock', null, $1) order by (row->>'id')::int`, [JSON.stringify(filter)])).rows.map((r) => Number(r.id));
    const sql = async (where: string) => (await db.query(`select id from stock where ${where} order by id`)).rows.map((r) => r.id);
    expect(await q({ qty: { gte: 10, lt: 12 } })).toEqual(await sql('qty >= 10 and qty < 12'));
    expect(await q({ price: { gt: '29.5' } })).toEqual(await sql('price > 29.5'));
    expect(await q({ sku: { in: ['sku-1', 'sku-20'] } })).toEqual(await sql(`sku in ('sku-1', 'sku-20')`));
    expect(await q({ sku: { lt: 'sku-11' }, tenant: { neq: 't0' } })).toEqual(await sql(`sku collate "C" < 'sku-11' and tenant <> 't0'`));
    expect(await q({ sku: { eq: null } })).toEqual(await sql('sku is null'));
  });

  it('refuses filters on unknown or excluded columns and unknown operators', async () => {
    for (const [filter, message] of [
      [{ nope: { eq: 1 } }, 'pgrelay: filter column "nope" does not exist in public.stock'],
      [{ secret: { eq: 'hidden' } }, 'pgrelay: filter column "secret" does not exist in public.stock'],
      [{ qty: { like: 1 } }, 'pgrelay: unknown filter operator "like" (use eq, neq, lt, lte, gt, gte or in)'],
      [{ qty: 1 }, 'pgrelay: the filter of column "qty" must be an object such as {"eq": value}'],
    ] as const) {
      await expect(db.query(`select * from relay.snapshot('stock', 't1', $1)`, [JSON.stringify(filter)])).rejects.toMatchObject({ code: SqlState.BadFilter, message });
    }
  });

  it('relay.position() in a REPEATABLE READ transaction names what that snapshot sees', async () => {
    const c = await db.connect();
    const other = await db.connect();
    try {
      await c.query('begin isolation level repeatable read');
      const p1 = Number((await c.query('select relay.position() as p')).rows[0]!.p);
      // an upsert always changes a row (earlier tests may have deleted any given id)
      await other.query(`insert into stock (id, tenant, qty) values (9999, 't1', 1) on conflict (id) do update set qty = stock.qty + 1`);
      await db.tick();
      const p2 = Number((await c.query('select relay.position() as p')).rows[0]!.p);
      await c.query('commit');
      const p3 = Number((await c.query('select relay.position() as p')).rows[0]!.p);
      expect(p2).toBe(p1);
      expect(p3).toBeGreaterThan(p1);
    } finally {
      await c.end();
      await other.end();
    }
  });

  it('reads rows back to its position when transactions committed after the last tick (every kind of change)', async () => {
    await db.query(`
      create table pend (id int primary key, tenant text not null, v int, note text);
      select relay.watch('pend', 'tenant', '{note}');
      insert into pend values (1, 'a', 1, 'x'), (2, 'a', 2, 'x'), (3, 'a', 3, 'x'), (4, 'b', 4, 'x'), (5, 'a', 5, 'x');`);
    await db.tick();
    const before = (await db.query(`select seq::int, row from relay.snapshot('pend', 'a') order by row->>'id'`)).rows;
    const position = before[0]!.seq;
    // committed, not numbered yet: updates (one twice), a delete, an insert, a key change, a row moving into tenant a
    await db.query(`update pend set v = 10 where id = 1`);
    await db.query(`update pend set v = 11 where id = 1`);
    await db.query(`delete from pend where id = 2`);
    await db.query(`insert into pend values (6, 'a', 6, 'x')`);
    await db.query(`update pend set id = 30 where id = 3`);
    await db.query(`update pend set tenant = 'a' where id = 4`);
    await db.query(`update pend set tenant = 'b' where id = 5`);
    const during = (await db.query(`select seq::int, row from relay.snapshot('pend', 'a') order by row->>'id'`)).rows;
    expect(during).toEqual(before);
    // a filter sees the rows as they were, too
    expect((await db.query(`select row->>'id' as id from relay.snapshot('pend', 'a', '{"v": {"gte": 2}}') order by 1`)).rows.map((r) => r.id))
      .toEqual(['2', '3', '5']);
    // once numbered, the stream above the position brings the snapshot to the table
    await db.tick();
    const rows = new Map(before.map((r) => [JSON.stringify([r.row.id]), r.row as JsonRow]));
    const { rows: log } = await db.query(`select c.op, c.pk, c.row, c.old, c.tenant, c.old_tenant from relay.changes c join relay.transactions t using (txid)
      where c.table_name = 'pend' and t.seq > $1 order by t.seq, c.id`, [position]);
    for (const ch of log) {
      // what tenant a's subscriber receives: a move out as a delete, a move in as an insert
      if (ch.tenant !== 'a' && ch.old_tenant !== 'a') continue;
      const op = ch.old_tenant === 'a' ? 'delete' : ch.op === 'update' && ch.old_tenant ? 'insert' : ch.op;
      applyChange(rows, { ...ch, op, row: op === 'delete' ? { ...ch.row, ...ch.old } : ch.row } as any, ['id']);
    }
    const now = (await db.query(`select seq::int, row from relay.snapshot('pend', 'a')`)).rows;
    expect(now[0]!.seq).toBe(position + 7);
    expect(sorted(rows)).toEqual(sorted(new Map(now.map((r) => [JSON.stringify([r.row.id]), r.row]))));
  });

  it('asks to be tried again when a TRUNCATE committed after the last tick', async () => {
    await db.query(`create table trunc (id int primary key, tenant text not null); select relay.watch('trunc', 'tenant'); insert into trunc values (1, 'a')`);
    await db.tick();
    await db.query(`truncate trunc`);
    await expect(db.query(`select * from relay.snapshot('trunc', 'a')`)).rejects.toMatchObject({ code: SqlState.SnapshotRetry });
    await db.tick();
    expect((await db.query(`select * from relay.snapshot('trunc', 'a')`)).rows).toEqual([]);
  });
});
