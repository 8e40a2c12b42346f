// relay.watch / relay.unwatch / relay.watched: installing capture, and every refusal with its message and SQLSTATE.
import { beforeAll, describe, expect, it } from 'vitest';
import { SqlState } from '../sqlstate.js';
import { leakGuard, useTestDatabase } from '../testing/index.js';

const db = useTestDatabase();
leakGuard(() => db.name);

beforeAll(async () => {
  await db.query(`
    create table orders (id bigserial primary key, tenant_id int not null, total numeric(12,2), secret text, note text);
    create table nokey (id int, tenant_id int);
    create table "Mixed Case" ("Id" int primary key, "Tenant" text);
    create view orders_view as select * from orders;
  `);
});

async function refusal(statement: string): Promise<{ code: string; message: string }> {
  try {
    await db.query(statement);
  } catch (err) {
    const e = err as { code: string; message: string };
    return { code: e.code, message: e.message };
  }
  throw new Error(`expected ${statement} to fail`);
}

describe('relay.watch refuses', () => {
  it('a table with no primary key', async () => {
    expect(await refusal(`select relay.watch('nokey', 'tenant_id')`)).toEqual({
      code: SqlState.NoPrimaryKey, message: 'pgrelay: table public.nokey has no primary key',
    });
  });
  it('a tenant column that does not exist', async () => {
    expect(await refusal(`select relay.watch('orders', 'tenant')`)).toEqual({
      code: SqlState.UnknownTenantColumn, message: 'pgrelay: tenant column "tenant" does not exist in table public.orders',
    });
  });
  it('an excluded column that does not exist', async () => {
    expect(await refusal(`select relay.watch('orders', 'tenant_id', '{secret,nope}')`)).toEqual({
      code: SqlState.UnknownExcludedColumn, message: 'pgrelay: excluded column "nope" does not exist in table public.orders',
    });
  });
  it('excluding a primary-key column', async () => {
    expect(await refusal(`select relay.watch('orders', 'tenant_id', '{id}')`)).toEqual({
      code: SqlState.ExcludedKeyColumn, message: 'pgrelay: column "id" of table public.orders is part of the primary key and cannot be excluded',
    });
  });
  it('excluding the tenant column', async () => {
    expect(await refusal(`select relay.watch('orders', 'tenant_id', '{tenant_id}')`)).toEqual({
      code: SqlState.ExcludedKeyColumn, message: 'pgrelay: column "tenant_id" of table public.orders is the tenant column and cannot be excluded',
    });
  });
  it("pgrelay's own tables", async () => {
    expect(await refusal(`select relay.watch('relay.changes', null)`)).toEqual({
      code: SqlState.RelayTable, message: 'pgrelay: relay.changes belongs to pgrelay and cannot be watched',
    });
  });
  it('a view', async () => {
    expect(await refusal(`select relay.watch('orders_view', 'tenant_id')`)).toEqual({
      code: SqlState.NotATable, message: 'pgrelay: public.orders_view is not a table (views, foreign and materialized tables cannot be watched)',
    });
  });
  it('a table that does not exist', async () => {
    expect(await refusal(`select relay.watch('nothere', 'tenant_id')`)).toEqual({
      code: SqlState.UndefinedTable, message: 'relation "nothere" does not exist',
    });
  });
  it('unwatching a table that is not watched', async () => {
    expect(await refusal(`select relay.unwatch('nokey')`)).toEqual({
      code: SqlState.NotWatched, message: 'pgrelay: table public.nokey is not watched',
    });
  });
});

describe('relay.watch installs capture', () => {
  it('lists the table in relay.watched, and a second call updates the configuration', async () => {
    await db.query(`select relay.watch('orders', 'tenant_id', '{secret}')`);
    let { rows } = await db.query(`select "table", tenant_column, primary_key, exclude_columns, numeric_columns, capturing, columns from relay.watched`);
    expect(rows).toEqual([{
      table: 'public.orders', tenant_column: 'tenant_id', primary_key: ['id'], exclude_columns: ['secret'],
      numeric_columns: ['id', 'total'], capturing: true,
      columns: [
        { name: 'id', type: 'bigint', base: 'bigint' },
        { name: 'tenant_id', type: 'integer', base: 'integer' },
        { name: 'total', type: 'numeric(12,2)', base: 'numeric' },
        { name: 'note', type: 'text', base: 'text' },
      ],
    }]);
    await db.query(`select relay.watch('orders', 'tenant_id', '{secret,note}')`);
    ({ rows } = await db.query(`select exclude_columns from relay.watched`));
    expect(rows).toEqual([{ exclude_columns: ['secret', 'note'] }]);
    await db.query(`insert into orders (tenant_id, total, secret, note) values (1, 5, 's', 'n')`);
    ({ rows } = await db.query(`select row from relay.changes`));
    expect(rows).toEqual([{ row: { id: '1', tenant_id: 1, total: '5.00' } }]);
  });

  it('accepts quoted names and tables without tenants', async () => {
    await db.query(`select relay.watch('"Mixed Case"', null)`);
    const { rows } = await db.query(`select "table", tenant_column, primary_key from relay.watched where table_name = 'Mixed Case'`);
    expect(rows).toEqual([{ table: 'public.Mixed Case', tenant_column: null, primary_key: ['Id'] }]);
  });

  it('relay.unwatch stops capture and keeps the history', async () => {
    await db.query(`select relay.unwatch('orders')`);
    await db.query(`insert into orders (tenant_id, total) values (2, 7)`);
    const { rows } = await db.query(`select count(*)::int as n from relay.changes`);
    expect(rows[0]!.n).toBe(1);
    const { rows: w } = await db.query(`select count(*)::int as n from relay.watched where table_name = 'orders'`);
    expect(w[0]!.n).toBe(0);
  });

  it('warns when prepared transactions are enabled, and only then', async () => {
    const c = await db.connect();
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    const { rows } = await c.query(`select current_setting('max_prepared_transactions')::int as n`);
    await c.query(`select relay.watch('orders', 'tenant_id')`);
    await c.end();
    const warned = notices.some((m) => m.includes('cannot be PREPAREd'));
    expect(warned).toBe(rows[0]!.n > 0);
  });
});
