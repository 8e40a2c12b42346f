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
  it.each([
    ['a table with no primary key', `select relay.watch('nokey', 'tenant_id')`, SqlState.NoPrimaryKey, 'pgrelay: table public.nokey has no primary key'],
    ['a tenant column that does not exist', `select relay.watch('orders', 'tenant')`, SqlState.UnknownTenantColumn, 'pgrelay: tenant column "tenant" does not exist in table public.orders'],
    ['an excluded column that does not exist', `select relay.watch('orders', 'tenant_id', '{secret,nope}')`, SqlState.UnknownExcludedColumn, 'pgrelay: excluded column "nope" does not exist in table public.orders'],
    ['excluding a primary-key column', `select relay.watch('orders', 'tenant_id', '{id}')`, SqlState.ExcludedKeyColumn, 'pgrelay: column "id" of table public.orders is part of the primary key and cannot be excluded'],
    ['excluding the tenant column', `select relay.watch('orders', 'tenant_id', '{tenant_id}')`, SqlState.ExcludedKeyColumn, 'pgrelay: column "tenant_id" of table public.orders is the tenant column and cannot be excluded'],
    ["pgrelay's own tables", `select relay.watch('relay.changes', null)`, SqlState.RelayTable, 'pgrelay: relay.changes belongs to pgrelay and cannot be watched'],
    ['a view', `select relay.watch('orders_view', 'tenant_id')`, SqlState.NotATable, 'pgrelay: public.orders_view is not a table (views, foreign and materialized tables cannot be watched)'],
    ['a table that does not exist', `select relay.watch('nothere', 'tenant_id')`, SqlState.UndefinedTable, 'relation "nothere" does not exist'],
    ['unwatching a table that is not watched', `select relay.unwatch('nokey')`, SqlState.NotWatched, 'pgrelay: table public.nokey is not watched'],
  ])('%s', async (_case, statement, code, message) => {
    expect(await refusal(statement)).toEqual({ code, message });
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

  it('takes no notice of max_prepared_transactions any more: writers never NOTIFY on their own', async () => {
    const c = await db.connect();
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    await c.query(`select relay.watch('orders', 'tenant_id')`);
    await c.end();
    expect(notices).toEqual([]);
  });
});

describe('tables without a primary key (legacy tables)', () => {
  beforeAll(async () => {
    await db.query(`
      create table ventas (folio int not null, caja int not null, idnegocio int not null, total numeric(10,2), ref text);
      create unique index ventas_folio_caja on ventas (folio, caja);
      create unique index ventas_ref on ventas (ref);            -- ref may be null: not a key
      create table doble (a int not null, b int not null, t text);
      create unique index doble_a on doble (a);
      create unique index doble_b on doble (b);
      create table replid (a int not null, b int not null, t text);
      create unique index replid_a on replid (a);
      create unique index replid_b on replid (b);
      alter table replid replica identity using index replid_b;
    `);
  });

  it('are keyed by their only unique index on NOT NULL columns', async () => {
    await db.query(`select relay.watch('ventas', 'idnegocio')`);
    const { rows } = await db.query(`select primary_key, key_source from relay.watched where table_name = 'ventas'`);
    expect(rows).toEqual([{ primary_key: ['folio', 'caja'], key_source: 'unique index ventas_folio_caja' }]);
    await db.query(`insert into ventas values (10, 2, 1, 99.5, null)`);
    await db.query(`update ventas set total = 100 where folio = 10`);
    const { rows: changes } = await db.query(`select op, pk from relay.changes where table_name = 'ventas' order by id`);
    expect(changes).toEqual([{ op: 'insert', pk: { folio: 10, caja: 2 } }, { op: 'update', pk: { folio: 10, caja: 2 } }]);
  });

  it('refuse a key of columns no unique NOT NULL index covers, and excluding a key column', async () => {
    expect(await refusal(`select relay.watch('ventas', 'idnegocio', key_columns => '{ref}')`)).toEqual({
      code: SqlState.NoPrimaryKey, message: 'pgrelay: table public.ventas has no unique index on (ref) whose columns are all NOT NULL',
    });
    expect(await refusal(`select relay.watch('ventas', 'idnegocio', key_columns => '{folio}')`)).toMatchObject({ code: SqlState.NoPrimaryKey });
    expect(await refusal(`select relay.watch('ventas', 'idnegocio', key_columns => '{nope}')`)).toEqual({
      code: SqlState.NoPrimaryKey, message: 'pgrelay: key column "nope" does not exist in table public.ventas',
    });
    expect(await refusal(`select relay.watch('ventas', 'idnegocio', '{caja}')`)).toEqual({
      code: SqlState.ExcludedKeyColumn, message: 'pgrelay: column "caja" of table public.ventas is part of the key and cannot be excluded',
    });
  });

  it('name the way out when several unique indexes could be the key, and take the one named', async () => {
    const r = await refusal(`select relay.watch('doble', null)`);
    expect(r).toEqual({ code: SqlState.NoPrimaryKey, message: 'pgrelay: table public.doble has no primary key, and several unique indexes could identify its rows (doble_a, doble_b)' });
    await db.query(`select relay.watch('doble', null, key_columns => '{b}')`);
    const { rows } = await db.query(`select primary_key, key_source from relay.watched where table_name = 'doble'`);
    expect(rows).toEqual([{ primary_key: ['b'], key_source: 'unique index doble_b' }]);
  });

  it('use the REPLICA IDENTITY index when the table names one', async () => {
    await db.query(`select relay.watch('replid', null)`);
    const { rows } = await db.query(`select primary_key, key_source from relay.watched where table_name = 'replid'`);
    expect(rows).toEqual([{ primary_key: ['b'], key_source: 'replica identity' }]);
  });

  it('say how to give a table a key when it has none', async () => {
    try {
      await db.query(`select relay.watch('nokey', 'tenant_id')`);
      throw new Error('expected a refusal');
    } catch (err) {
      expect((err as { hint?: string }).hint).toMatch(/primary key, or a unique index on NOT NULL columns \(then name its columns with key_columns/);
    }
  });
});
