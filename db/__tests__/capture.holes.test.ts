// The holes a prototype found: replica sessions, TRUNCATE, PREPARE TRANSACTION, SET CONSTRAINTS ALL IMMEDIATE, savepoints.
import { beforeAll, describe, expect, it } from 'vitest';
import { SqlState } from '../sqlstate.js';
import { leakGuard, useTestDatabase } from '../testing/index.js';

const db = useTestDatabase();
leakGuard(() => db.name);

beforeAll(async () => {
  await db.query(`
    create table a (id int primary key, tenant text, v int);
    create table b (id int primary key, tenant text, v int);
    select relay.watch('a', 'tenant');
    select relay.watch('b', 'tenant');
  `);
});

async function changesOfLastTx(): Promise<Array<{ tenant: string | null; table_name: string; op: string }>> {
  const { rows } = await db.query(`select c.tenant, c.table_name, c.op from relay.changes c join relay.transactions t using (txid)
    where t.seq = (select max(seq) from relay.transactions) order by c.id`);
  return rows as any;
}

describe('capture holes', () => {
  it('fires in session_replication_role = replica (logical replication, data-only restores)', async () => {
    const c = await db.connect();
    await c.query(`set session_replication_role = replica`);
    await c.query(`insert into a values (1, 't', 1)`);
    await c.end();
    expect(await changesOfLastTx()).toEqual([{ tenant: 't', table_name: 'a', op: 'insert' }]);
  });

  it('records one truncate per truncated table, for every tenant', async () => {
    await db.query(`insert into b values (1, 't', 1)`);
    await db.query(`truncate a, b`);
    expect(await changesOfLastTx()).toEqual([
      { tenant: null, table_name: 'a', op: 'truncate' },
      { tenant: null, table_name: 'b', op: 'truncate' },
    ]);
  });

  it('a transaction that changes a watched table cannot be PREPAREd (documented limit)', async () => {
    const { rows } = await db.query(`select current_setting('max_prepared_transactions')::int as n`);
    if (rows[0]!.n === 0) return; // servers without prepared transactions refuse PREPARE anyway
    const c = await db.connect();
    await c.query('begin');
    await c.query(`insert into a values (50, 't', 1)`);
    await expect(c.query(`prepare transaction 'p1'`)).rejects.toThrow('cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or NOTIFY');
    await c.query('rollback').catch(() => undefined);
    await c.end();
    const { rows: left } = await db.query(`select count(*)::int as n from relay.changes where row->>'id' = '50'`);
    expect(left[0]!.n).toBe(0);
  });

  it('survives a rolled-back savepoint that held the first change', async () => {
    const c = await db.connect();
    await c.query('begin');
    await c.query('savepoint s1');
    await c.query(`insert into a values (60, 'gone', 1)`);
    await c.query('rollback to savepoint s1');
    await c.query(`insert into a values (61, 'kept', 1)`);
    await c.query('commit');
    await c.end();
    expect(await changesOfLastTx()).toEqual([{ tenant: 'kept', table_name: 'a', op: 'insert' }]);
  });

  describe('SET CONSTRAINTS ALL IMMEDIATE', () => {
    it('sequences early: the transaction commits in order, and a later change to a watched table is refused with PR006', async () => {
      const c = await db.connect();
      try {
        await c.query('begin');
        await c.query(`insert into a values (70, 't', 1)`);
        await c.query('set constraints all immediate');
        await expect(c.query(`insert into a values (71, 't', 1)`)).rejects.toMatchObject({
          code: SqlState.AlreadySequenced,
          message: 'pgrelay: this transaction already took its commit position, so its later changes to public.a cannot be streamed',
        });
        await c.query('rollback');
        await c.query('begin');
        await c.query(`insert into a values (72, 't', 1)`);
        await c.query('set constraints all immediate');
        await c.query(`update b set v = 2 where false`); // statements on unwatched rows are fine
        await c.query('commit');
      } finally {
        await c.end();
      }
      expect(await changesOfLastTx()).toEqual([{ tenant: 't', table_name: 'a', op: 'insert' }]);
    });

    it('holds other writers only until relay.sequenced_timeout ends the idle transaction', async () => {
      const early = await db.connect({ application_name: 'early' });
      const other = await db.connect({ application_name: 'other' });
      early.on('error', () => undefined);
      await early.query('begin');
      await early.query(`set local relay.sequenced_timeout = '1500ms'`);
      await early.query(`insert into a values (80, 't', 1)`);
      await early.query('set constraints all immediate');
      const t0 = Date.now();
      await other.query(`insert into b values (80, 't', 1)`); // waits on the commit lock
      const waited = Date.now() - t0;
      expect(waited).toBeGreaterThan(1000);
      expect(waited).toBeLessThan(10_000);
      // the early transaction was ended by idle_in_transaction_session_timeout
      await expect(early.query('commit')).rejects.toThrow();
      await early.end().catch(() => undefined);
      await other.end();
      expect(await changesOfLastTx()).toEqual([{ tenant: 't', table_name: 'b', op: 'insert' }]);
    });
  });
});
