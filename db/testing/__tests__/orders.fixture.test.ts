// The kit's orders fixture: the table in the shape asked for, watched by tenant_id unless told not to, and writers
// that commit until stopped and say how many they committed.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../database.js';
import { leakGuard } from '../leaks.js';
import { createOrders, EXAMPLE_COLUMNS, insertOrder, keepWriting, tenantTableSql, writeOrders } from '../orders.js';
import { until } from '../wait.js';

const db = useTestDatabase();
leakGuard(() => db.name);

describe('createTenantTable and createOrders', () => {
  it('writes the DDL for the shape, and the watch with its excluded columns', () => {
    expect(tenantTableSql('orders')).toBe(`create table orders (id serial primary key, tenant_id text not null); select relay.watch('orders', 'tenant_id')`);
    expect(tenantTableSql('notes', { id: 'bigserial primary key', columns: { body: 'text', card: 'text' }, excluded: ['card'] })).toBe(
      `create table notes (id bigserial primary key, tenant_id text not null, body text, card text); select relay.watch('notes', 'tenant_id', '{card}')`);
    expect(tenantTableSql('orders', { columns: { n: 'int' }, watch: false })).toBe('create table orders (id serial primary key, tenant_id text not null, n int)');
  });

  it("creates the example's table, watched by tenant_id, and insertOrder captures a row", async () => {
    await createOrders(db, { id: 'bigserial primary key', columns: EXAMPLE_COLUMNS });
    const { rows: columns } = await db.query<{ column_name: string }>(`select column_name from information_schema.columns where table_name = 'orders' order by ordinal_position`);
    expect(columns.map((c) => c.column_name)).toEqual(['id', 'tenant_id', 'customer', 'total', 'status', 'created_at']);
    const { rows: watched } = await db.query(`select tenant_column from relay.watched where table_name = 'orders'`);
    expect(watched).toEqual([{ tenant_column: 'tenant_id' }]);
    await insertOrder(db, { tenant_id: 'acme', customer: 'Ada', total: '1.50' });
    const { rows: changes } = await db.query(`select tenant, op, row->>'customer' as customer from relay.changes where table_name = 'orders'`);
    expect(changes).toEqual([{ tenant: 'acme', op: 'insert', customer: 'Ada' }]);
    await db.query('drop table orders');
  });
});

describe('keepWriting', () => {
  it('commits until stopped, and stop() says how many', async () => {
    await createOrders(db, { columns: { n: 'int' } });
    const writer = writeOrders(db, (n) => (n % 2 ? 'a' : 'b'), { pauseMs: 1 });
    await until(() => writer.written >= 5, 'five writes');
    const written = await writer.stop();
    const { rows } = await db.query<{ n: number; a: number }>(`select count(*)::int as n, count(*) filter (where tenant_id = 'a')::int as a from orders`);
    expect(rows[0]).toEqual({ n: written, a: Math.floor(written / 2) });
    await db.query('drop table orders');
  });

  it('ends at the first write that fails: stop() and ended reject with its error', async () => {
    const writer = keepWriting(db, (c) => c.query('select * from no_such_table'));
    await expect(writer.ended).rejects.toThrow(/no_such_table/);
    await expect(writer.stop()).rejects.toThrow(/no_such_table/);
    expect(writer.written).toBe(0);
  });
});
