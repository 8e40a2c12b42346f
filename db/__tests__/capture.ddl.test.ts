// Schema changes on watched tables: the event triggers keep capture in step (new int8 columns, renamed excluded columns, dropped tables).
import { beforeAll, describe, expect, it } from 'vitest';
import { leakGuard, useTestDatabase } from '../testing/index.js';

const db = useTestDatabase();
leakGuard(() => db.name);

beforeAll(async () => {
  await db.query(`
    create table accounts (id int primary key, tenant_id text not null, pin text, note text);
    select relay.watch('accounts', 'tenant_id', '{pin}');
  `);
});

async function lastRow(): Promise<Record<string, unknown>> {
  await db.tick();
  const { rows } = await db.query(`select c.row from relay.changes c join relay.transactions t using (txid) order by t.seq desc, c.id desc limit 1`);
  return rows[0]!.row;
}

describe('ALTER TABLE on a watched table', () => {
  it('needs the event triggers the migration installs as a superuser', async () => {
    const { rows } = await db.query(`select evtname from pg_event_trigger where evtname like 'relay\\_%' order by 1`);
    expect(rows.map((r) => r.evtname)).toEqual(['relay_ddl', 'relay_drop']);
  });

  it('streams a new int8 column as a string at once', async () => {
    await db.query(`alter table accounts add column balance bigint`);
    await db.query(`insert into accounts values (1, 't', '1234', 'a', 9007199254740993)`);
    expect(await lastRow()).toEqual({ id: 1, tenant_id: 't', note: 'a', balance: '9007199254740993' });
  });

  it('keeps a renamed excluded column excluded', async () => {
    await db.query(`alter table accounts rename column pin to pin_code`);
    await db.query(`update accounts set pin_code = '9999', note = 'b' where id = 1`);
    const row = await lastRow();
    expect(row).not.toHaveProperty('pin_code');
    expect(row).not.toHaveProperty('pin');
    const { rows } = await db.query(`select exclude_columns from relay.watched where table_name = 'accounts'`);
    expect(rows[0]!.exclude_columns).toEqual(['pin_code']);
  });

  it('keeps writing after a column is dropped', async () => {
    await db.query(`alter table accounts drop column note`);
    await db.query(`insert into accounts (id, tenant_id) values (2, 't')`);
    expect(await lastRow()).toEqual({ id: 2, tenant_id: 't', balance: null });
  });

  it('forgets a dropped table, and its history still reads', async () => {
    await db.query(`drop table accounts`);
    expect((await db.query(`select count(*)::int as n from relay.watched`)).rows[0]!.n).toBe(0);
    const { rows } = await db.query(`select c.table_name, c.op, c.pk from relay.changes c join relay.transactions t using (txid) order by t.seq desc, c.id desc limit 1`);
    expect(rows).toEqual([{ table_name: 'accounts', op: 'insert', pk: { id: 2 } }]);
  });
});
