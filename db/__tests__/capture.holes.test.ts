// The holes a commit-time design had, now closed: replica sessions, TRUNCATE, PREPARE TRANSACTION, SET CONSTRAINTS ALL IMMEDIATE, savepoints.
import { beforeAll, describe, expect, it } from 'vitest';
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
  await db.tick();
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

  // Where PREPARE TRANSACTION is possible (these servers allow it) writers send no wake-up NOTIFY unless relay.wake = on
  // (a transaction that sent NOTIFY cannot be PREPAREd); the test databases set it on, as a DBA who knows no writer uses
  // two-phase commit would. '' is a server's default, `off` what a two-phase writer's role sets under `on`.
  it.each([
    ['with the server default (no relay.wake)', ''],
    ['with relay.wake = off for the writer', 'off'],
  ])('a transaction that changes a watched table can be PREPAREd %s, and is streamed when COMMIT PREPARED', async (_label, wake) => {
    const { rows } = await db.query(`select current_setting('max_prepared_transactions')::int as n`);
    expect(rows[0]!.n, 'the test servers allow prepared transactions').toBeGreaterThan(0);
    const c = await db.connect();
    const id = wake === 'off' ? 51 : 50;
    const tenant = `two-phase-${id}`;
    try {
      await c.query(`set relay.wake = '${wake}'`);
      await c.query('begin');
      await c.query(`insert into a values (${id}, '${tenant}', 1)`);
      await c.query(`prepare transaction 'p${id}'`);
      // prepared, not committed: nothing to stream yet
      expect((await changesOfLastTx()).some((ch) => ch.tenant === tenant)).toBe(false);
      await c.query(`commit prepared 'p${id}'`);
    } finally {
      await c.query(`rollback prepared 'p${id}'`).catch(() => undefined);
      await c.end();
    }
    expect(await changesOfLastTx()).toEqual([{ tenant, table_name: 'a', op: 'insert' }]);
  });

  it('with relay.wake = on, a writer that finds the ticker asleep wakes it, and so cannot PREPARE (documented)', async () => {
    const c = await db.connect();
    try {
      await c.query(`select relay.ticker_sleep(true)`);
      expect((await c.query(`show relay.wake`)).rows[0]!['relay.wake']).toBe('on');
      await c.query('begin');
      await c.query(`insert into a values (52, 'two-phase', 1)`);
      await expect(c.query(`prepare transaction 'p52'`)).rejects.toThrow('cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or NOTIFY');
    } finally {
      await c.query('rollback').catch(() => undefined);
      await c.end();
    }
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

  it('SET CONSTRAINTS ALL IMMEDIATE changes nothing: later changes are captured, no other writer waits, commit order holds', async () => {
    const early = await db.connect({ application_name: 'early' });
    const other = await db.connect({ application_name: 'other' });
    try {
      await early.query('begin');
      await early.query(`insert into a values (70, 't', 1)`);
      await early.query('set constraints all immediate');
      await early.query(`insert into a values (71, 't', 1)`);
      const t0 = Date.now();
      await other.query(`insert into b values (80, 'other', 1)`);
      expect(Date.now() - t0).toBeLessThan(2_000);
      // a tick between the two commits: the later commit gets the later seq (inside one tick's batch, two independent
      // transactions may come in either order)
      await db.tick();
      await early.query('commit');
    } finally {
      await early.end();
      await other.end();
    }
    await db.tick();
    const { rows } = await db.query(`select t.seq, c.table_name, c.row->>'id' as id from relay.changes c join relay.transactions t using (txid)
      where c.row->>'id' in ('70', '71', '80') order by t.seq, c.id`);
    // the other writer committed first, so it comes first
    expect(rows.map((r) => [r.table_name, r.id])).toEqual([['b', '80'], ['a', '70'], ['a', '71']]);
  });
});
