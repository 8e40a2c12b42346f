// Least privilege: writers need no grant on relay; relay_reader reads the log and listens, and nothing else.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leakGuard, useTestDatabase } from '../testing/index.js';

const db = useTestDatabase();
leakGuard(() => db.name);
const suffix = randomBytes(3).toString('hex');
const writer = `app_writer_${suffix}`;
const reader = `relay_app_${suffix}`;

beforeAll(async () => {
  await db.query(`
    create table orders (id serial primary key, tenant text not null, total int);
    select relay.watch('orders', 'tenant');
    create role ${writer} login password 'w';
    grant usage on schema public to ${writer};
    grant insert, update, delete on orders to ${writer};
    grant select (id) on orders to ${writer};
    grant usage on sequence orders_id_seq to ${writer};
    create role ${reader} login password 'r' in role relay_reader;
  `);
});
afterAll(async () => {
  await db.query(`drop owned by ${writer}; drop owned by ${reader}; drop role ${writer}; drop role ${reader};`);
});

async function as<T>(user: string, password: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await db.connect({ connectionString: db.urlAs(user, password) });
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

describe('privileges', () => {
  it('a role that may only write the watched table writes, and its changes are captured', async () => {
    await as(writer, 'w', async (c) => {
      await c.query(`insert into orders (tenant, total) values ('t', 1)`);
      await c.query(`update orders set total = 2 where id = 1`);
      await c.query(`delete from orders where id = 1`);
      await expect(c.query('select * from relay.changes')).rejects.toThrow('permission denied for schema relay');
      await expect(c.query('select relay.tick()')).rejects.toThrow('permission denied for schema relay');
    });
    await db.tick();
    const { rows } = await db.query(`select c.op, t.db_user from relay.changes c join relay.transactions t using (txid) order by t.seq, c.id`);
    expect(rows).toEqual([
      { op: 'insert', db_user: writer }, { op: 'update', db_user: writer }, { op: 'delete', db_user: writer },
    ]);
  });

  it('relay_reader reads relay, listens and takes snapshots, and can write nothing', async () => {
    await db.query(`insert into orders (tenant, total) values ('t', 5)`);
    await as(reader, 'r', async (c) => {
      // the relay's role runs the ticker
      await c.query('begin isolation level repeatable read');
      expect((await c.query('select sequenced from relay.tick()')).rows[0]!.sequenced).toBe(1);
      await c.query('commit');
      expect((await c.query('select count(*)::int as n from relay.changes')).rows[0]!.n).toBeGreaterThan(0);
      // issue 18: what the relay reads, and nothing more (relay.watched calls relay._streamed: it must be executable)
      expect((await c.query('select "table", columns, relid from relay.watched')).rows).toHaveLength(1);
      await expect(c.query('select count(*) from relay.audit')).rejects.toThrow('permission denied for view audit');
      await expect(c.query('select count(*) from relay.log')).rejects.toThrow('permission denied for table log');
      await c.query('listen relay');
      expect((await c.query(`select row->>'total' as t from relay.snapshot('orders', 't')`)).rows).toEqual([{ t: '5' }]);
      await expect(c.query(`select * from orders`)).rejects.toThrow('permission denied for table orders');
      await expect(c.query(`insert into orders (tenant, total) values ('t', 1)`)).rejects.toThrow('permission denied for table orders');
      await expect(c.query(`update orders set total = 0`)).rejects.toThrow('permission denied for table orders');
      await expect(c.query(`insert into relay.log (relid, op) values (1, 'insert')`)).rejects.toThrow('permission denied for table log');
      await expect(c.query(`update relay.ticker set last_seq = 0`)).rejects.toThrow('permission denied for table ticker');
      await expect(c.query(`delete from relay.transactions`)).rejects.toThrow('permission denied for table transactions');
      await expect(c.query(`select relay.watch('orders', 'tenant')`)).rejects.toThrow('permission denied for function watch');
      await expect(c.query(`select relay.unwatch('orders')`)).rejects.toThrow('permission denied for function unwatch');
    });
  });
});
