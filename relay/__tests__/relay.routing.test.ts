// Tenancy and routing: each client gets exactly its tenant's changes of its tables, in seq order; all_tenants sees all.
import { beforeAll, describe, expect, it } from 'vitest';
import { createOrders, createTenantTable, insertOrder, leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { connect, httpGet, metric, startTestRelay, token, type TestClient, type TestRelay } from './support/relay-harness.js';

const db = useTestDatabase();
let relay: TestRelay;

beforeAll(async () => {
  await createOrders(db, { columns: { total: 'int', status: 'text' } });
  await createTenantTable(db, 'notes', { columns: { body: 'text' } });
  await db.query(`create table plans (id serial primary key, name text); select relay.watch('plans', null)`);
  relay = await startTestRelay(db);
});
leakGuard(() => db.name);

async function subscribed(c: TestClient, id: string, table: string, extra: Record<string, unknown> = {}): Promise<void> {
  c.send({ type: 'subscribe', id, table, ...extra });
  await c.next((f) => (f.type === 'subscribed' || f.type === 'error') && f.id === id);
  const err = c.frames.find((f) => f.type === 'error' && f.id === id);
  if (err) throw new Error(`${err.code}: ${err.message}`);
}

describe('routing by tenant and table', () => {
  it('delivers exactly each tenant its own changes, in seq order, and everything to all_tenants', async () => {
    const a1 = await connect(relay.url, await token({ tenant_id: 'a' }));
    const a2 = await connect(relay.url, await token({ tenant_id: 'a' }));
    const b1 = await connect(relay.url, await token({ tenant_id: 'b' }));
    const admin = await connect(relay.url, await token({ all_tenants: true }));
    const ordersOnly = await connect(relay.url, await token({ tenant_id: 'a', tables: ['orders'] }));
    for (const c of [a1, a2, b1, admin]) {
      await subscribed(c, 'o', 'public.orders');
      await subscribed(c, 'n', 'notes');
    }
    await subscribed(ordersOnly, 'o', 'orders');
    ordersOnly.send({ type: 'subscribe', id: 'n', table: 'notes' });
    expect(await ordersOnly.next((f) => f.type === 'error')).toMatchObject({ code: 'table_not_allowed', id: 'n', message: 'your token does not allow table public.notes' });

    for (let i = 0; i < 30; i++) {
      const t = i % 3 === 0 ? 'b' : 'a';
      await insertOrder(db, { tenant_id: t, total: i, status: 'open' });
      if (i % 5 === 0) await db.query(`insert into notes (tenant_id, body) values ('a', 'n${i}'), ('b', 'n${i}')`);
    }
    await db.query(`update orders set status = 'paid' where total < 10`); // one transaction, both tenants
    const { rows } = await db.query(`select c.tenant, c.table_name, t.seq::int as seq, c.id from relay.changes c join relay.transactions t using (txid) order by t.seq, c.id`);
    const expected = (tenant: string | null, table: string) => rows.filter((r) => (tenant === null || r.tenant === tenant) && r.table_name === table);
    const last = rows[rows.length - 1]!.seq;
    for (const c of [a1, a2, b1, admin, ordersOnly]) await c.until(() => c.txs().some((f) => f.seq === last) || c === ordersOnly, 10_000, 'the last transaction');
    await ordersOnly.until(() => ordersOnly.txs('o').reduce((n, f) => n + f.changes.length, 0) === expected('a', 'orders').length);

    const received = (c: TestClient, sub: string) => c.txs(sub).flatMap((f) => f.changes.map((ch: any) => ({ seq: f.seq, tenant: ch.row.tenant_id })));
    for (const [c, tenant] of [[a1, 'a'], [a2, 'a'], [b1, 'b'], [admin, null], [ordersOnly, 'a']] as const) {
      const o = received(c, 'o');
      expect(o.map((x) => x.seq)).toEqual(expected(tenant, 'orders').map((r) => r.seq));
      expect(o.every((x) => tenant === null || x.tenant === tenant)).toBe(true);
      const seqs = c.txs().map((f) => f.seq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      if (c !== ordersOnly) expect(received(c, 'n').map((x) => x.seq)).toEqual(expected(tenant, 'notes').map((r) => r.seq));
    }
    // the two-tenant update arrives to each tenant as one frame holding only its own rows
    const upd = b1.txs('o').find((f) => f.changes[0].op === 'update')!;
    expect(upd.changes.every((ch: any) => ch.row.tenant_id === 'b')).toBe(true);
    for (const c of [a1, a2, b1, admin, ordersOnly]) await c.close();
  });

  it('lets only all-tenant tokens subscribe to a table without tenants', async () => {
    const a = await connect(relay.url, await token({ tenant_id: 'a' }));
    a.send({ type: 'subscribe', id: 'p', table: 'plans' });
    expect(await a.next((f) => f.type === 'error')).toMatchObject({ code: 'table_not_allowed', message: 'table public.plans has no tenants: only all-tenant tokens may subscribe to it' });
    const admin = await connect(relay.url, await token({ all_tenants: true }));
    await subscribed(admin, 'p', 'plans');
    await db.query(`insert into plans (name) values ('gold')`);
    expect((await admin.next((f) => f.type === 'tx')).changes[0].row).toEqual({ id: 1, name: 'gold' });
    await a.close();
    await admin.close();
  });

  it('applies filters once per distinct filter; rows moving in and out arrive as insert and delete', async () => {
    const c1 = await connect(relay.url, await token({ tenant_id: 'f' }));
    const c2 = await connect(relay.url, await token({ tenant_id: 'f' }));
    const filter = { status: { eq: 'open' }, total: { gte: 10 } };
    await subscribed(c1, 'open', 'orders', { filter });
    await subscribed(c2, 'open', 'orders', { filter: { total: { gte: 10 }, status: { eq: 'open' } } });
    const framesBefore = metric((await httpGet(`${relay.http}/metrics`)).body, 'pgrelay_frames_published_total');
    await db.query(`insert into orders (id, tenant_id, total, status) values (1001, 'f', 5, 'open'), (1002, 'f', 50, 'open'), (1003, 'f', 50, 'paid')`);
    await db.query(`update orders set total = 20 where id = 1001`); // moves in
    await db.query(`update orders set status = 'paid' where id = 1002`); // moves out
    await db.query(`update orders set total = 60 where id = 1003`); // stays out
    await db.query(`delete from orders where id = 1001`);
    await c1.until(() => c1.txs().length === 4);
    const ops = c1.txs().map((f) => f.changes.map((ch: any) => [ch.op, ch.row.id]));
    expect(ops).toEqual([[['insert', 1002]], [['insert', 1001]], [['delete', 1002]], [['delete', 1001]]]);
    expect(c1.txs().find((f) => f.changes[0].row.id === 1002 && f.changes[0].op === 'delete')!.changes[0].row.status).toBe('open');
    await c2.until(() => c2.txs().length === 4);
    expect(c2.txs()).toEqual(c1.txs());
    const framesAfter = metric((await httpGet(`${relay.http}/metrics`)).body, 'pgrelay_frames_published_total');
    expect(framesAfter - framesBefore).toBe(4); // one serialized frame per transaction for both sockets
    await c1.close();
    await c2.close();
  });
});
