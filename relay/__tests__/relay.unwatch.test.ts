// Issue 12 (item 7): `relay.unwatch` tells every subscriber of the table, with `reset` reason `table_unwatched`, instead of leaving it subscribed forever.
import { beforeAll, describe, expect, it } from 'vitest';
import { createOrders, createTenantTable, insertOrder, leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { connect, startTestRelay, token, type TestClient, type TestRelay } from './support/relay-harness.js';

const db = useTestDatabase();
let relay: TestRelay;

beforeAll(async () => {
  await createOrders(db, { columns: { total: 'int' } });
  await createTenantTable(db, 'items', { columns: { name: 'text' } });
  await createTenantTable(db, 'scratch');
  await insertOrder(db, { tenant_id: 'a', total: 1 });
  relay = await startTestRelay(db);
});
leakGuard(() => db.name);

async function subscribed(c: TestClient, id: string, table: string, extra: Record<string, unknown> = {}): Promise<void> {
  c.send({ type: 'subscribe', id, table, ...extra });
  const f = await c.next((f) => (f.type === 'subscribed' || f.type === 'error') && f.id === id);
  if (f.type === 'error') throw new Error(`${f.code}: ${f.message}`);
}

describe('issue 12: unwatch', () => {
  it('resets every subscription of the table with reason table_unwatched, and only those', async () => {
    const live = await connect(relay.url, await token({ tenant_id: 'a' }));
    const resumed = await connect(relay.url, await token({ tenant_id: 'a' }));
    const admin = await connect(relay.url, await token({ all_tenants: true }));
    try {
      await subscribed(live, 'o', 'orders');
      await subscribed(resumed, 'o', 'public.orders', { since: 0 });
      await subscribed(resumed, 'i', 'items');
      await subscribed(admin, 'all', 'orders', { snapshot: true });
      await resumed.next((f) => f.type === 'tx' && f.sub === 'o');

      await db.query(`select relay.unwatch('orders')`);
      for (const [c, sub] of [[live, 'o'], [resumed, 'o'], [admin, 'all']] as const) {
        expect(await c.next((f) => f.type === 'reset')).toEqual({ type: 'reset', sub, reason: 'table_unwatched', seq: expect.any(Number) });
      }
      // the other table goes on; the unwatched one is gone
      await db.query(`insert into items (tenant_id, name) values ('a', 'x'); insert into orders (tenant_id, total) values ('a', 2)`);
      expect((await resumed.next((f) => f.type === 'tx')).sub).toBe('i');
      live.send({ type: 'subscribe', id: 'o2', table: 'orders' });
      expect(await live.next((f) => f.type === 'error')).toMatchObject({ code: 'unknown_table', id: 'o2' });
      expect(live.frames.filter((f) => f.type === 'reset')).toHaveLength(1);
      expect(resumed.frames.filter((f) => f.type === 'tx' && f.sub === 'o')).toHaveLength(1);
    } finally {
      await Promise.all([live.close(), resumed.close(), admin.close()]);
    }
  });

  it('treats a dropped watched table the same: its subscribers get reset table_unwatched', async () => {
    const c = await connect(relay.url, await token({ tenant_id: 'a' }));
    try {
      await subscribed(c, 's', 'scratch');
      await db.query(`drop table scratch`);
      expect(await c.next((f) => f.type === 'reset')).toEqual({ type: 'reset', sub: 's', reason: 'table_unwatched', seq: expect.any(Number) });
      const { rows } = await db.query(`select count(*)::int as n from relay.watched where table_name = 'scratch'`);
      expect(rows[0]!.n).toBe(0);
    } finally {
      await c.close();
    }
  });
});
