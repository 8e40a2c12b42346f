// syncQueryClient(): every cache rule against a real QueryClient, fed through a real socket by a scripted relay.
import { notifyManager, QueryClient, QueryObserver, type QueryKey } from '@tanstack/query-core';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createRelayClient, type RelayClient } from '../index.js';
import type { Change } from '../shared/protocol.js';
import { syncQueryClient, type SyncTables } from '../tanstack.js';
import { leakGuard, passes, sleep, until } from '../../db/testing/index.js';
import { fakeJwt, startTestRelay, type RelayConnection, type TestRelay } from './support/test-relay.js';

// timers count too: the client's reconnect, heartbeat and refresh timers must end with the test
leakGuard({ timers: true, timeoutMs: 2000 });

let relay: TestRelay | undefined;
let client: RelayClient | undefined;
let qc: QueryClient | undefined;
let stop: (() => void) | undefined;
afterEach(async () => {
  stop?.();
  client?.close();
  qc?.clear();
  await relay?.close();
  relay = client = qc = stop = undefined;
  notifyManager.setBatchNotifyFunction((cb) => cb());
});

const orders: SyncTables<unknown> = {
  orders: { primaryKey: ['id'], lists: ['orders', 'list'], detail: (pk) => ['orders', 'detail', pk.id] },
};

/** Connects syncQueryClient through the scripted relay; `tx` sends one transaction and resolves once it was applied. */
async function connect(tables: SyncTables<unknown> = orders) {
  relay = await startTestRelay();
  client = createRelayClient({ url: relay.url, token: fakeJwt({ tenant_id: '7' }), WebSocket, backoff: { minMs: 10, maxMs: 50 } });
  const conn = await relay.nextConnection();
  qc = new QueryClient();
  // A marker table: when its row shows a transaction's seq, everything sent before it was applied.
  qc.setQueryData(['marks'], [{ id: 'm', seq: 0 }]);
  stop = syncQueryClient(client, qc, { ...tables, 'relay_test.marks': { lists: ['marks'] } });
  const ids: Record<string, string> = {};
  for (let i = 0; i <= Object.keys(tables).length; i++) {
    const m = await conn.next('subscribe');
    expect(m.since).toBeUndefined();
    expect(m.snapshot).toBeUndefined();
    ids[m.table] = m.id;
    conn.send({ type: 'subscribed', id: m.id, seq: 0 });
  }
  let seq = 0;
  const q = qc;
  const tx = async (table: string, changes: Change[]) => {
    conn.send({ type: 'tx', sub: ids[table]!, seq: ++seq, at: '2026-01-01T00:00:00Z', origin: null, changes });
    const mark = ++seq;
    conn.send({ type: 'tx', sub: ids['relay_test.marks']!, seq: mark, at: '', origin: null, changes: [upd('relay_test.marks', { id: 'm' }, { id: 'm', seq: mark })] });
    await until(passes(() => expect(q.getQueryData<Array<{ seq: number }>>(['marks'])![0]!.seq).toBe(mark)));
  };
  return { qc, conn, ids, tx };
}

const upd = (table: string, pk: Record<string, unknown>, row: Record<string, unknown>): Change => ({ table, op: 'update', pk: pk as any, row: row as any, old: {} });
const ins = (row: Record<string, unknown>): Change => ({ table: 'public.orders', op: 'insert', pk: { id: row.id as string }, row: row as any });
const del = (id: string): Change => ({ table: 'public.orders', op: 'delete', pk: { id }, row: { id } });
const invalidated = (key: QueryKey) => qc!.getQueryState(key)?.isInvalidated;

describe('syncQueryClient', () => {
  it('merges an update into every list shape under the prefix and into the detail, comparing keys as strings', async () => {
    const { qc, tx } = await connect();
    const row1 = { id: 1, total: '10.00', note: 'keep' };
    const row2 = { id: 2, total: '20.00' };
    qc.setQueryData(['orders', 'list', 'array'], [row1, row2]);
    qc.setQueryData(['orders', 'list', 'page'], { items: [row1], total: 1 });
    qc.setQueryData(['orders', 'list', 'infinite-arrays'], { pages: [[row2], [row1]], pageParams: [0, 1] });
    qc.setQueryData(['orders', 'list', 'infinite-items'], { pages: [{ items: [row1] }], pageParams: [0] });
    qc.setQueryData(['orders', 'list', 'infinite-data'], { pages: [{ data: [row1], next: 2 }], pageParams: [0] });
    qc.setQueryData(['orders', 'list', 'infinite-rows'], { pages: [{ rows: [row1] }], pageParams: [0] });
    qc.setQueryData(['orders', 'detail', 1], { ...row1, lines: [] });
    qc.setQueryData(['orders', 'detail', 2], row2);
    qc.setQueryData(['customers', 'list'], [{ id: 1, total: 'not an order' }]);
    await tx('public.orders', [upd('public.orders', { id: '1' }, { id: '1', total: '99.00' })]);
    const patched = { id: '1', total: '99.00', note: 'keep' };
    expect(qc.getQueryData(['orders', 'list', 'array'])).toEqual([patched, row2]);
    expect((qc.getQueryData(['orders', 'list', 'array']) as unknown[])[1]).toBe(row2);
    expect(qc.getQueryData(['orders', 'list', 'page'])).toEqual({ items: [patched], total: 1 });
    expect(qc.getQueryData(['orders', 'list', 'infinite-arrays'])).toEqual({ pages: [[row2], [patched]], pageParams: [0, 1] });
    expect(qc.getQueryData(['orders', 'list', 'infinite-items'])).toEqual({ pages: [{ items: [patched] }], pageParams: [0] });
    expect(qc.getQueryData(['orders', 'list', 'infinite-data'])).toEqual({ pages: [{ data: [patched], next: 2 }], pageParams: [0] });
    expect(qc.getQueryData(['orders', 'list', 'infinite-rows'])).toEqual({ pages: [{ rows: [patched] }], pageParams: [0] });
    expect(qc.getQueryData(['orders', 'detail', 1])).toEqual({ ...patched, lines: [] });
    expect(qc.getQueryData(['orders', 'detail', 2])).toBe(row2);
    expect(qc.getQueryData(['customers', 'list'])).toEqual([{ id: 1, total: 'not an order' }]);
    expect(qc.getQueryCache().findAll().filter((q) => q.state.isInvalidated)).toEqual([]);
    // An update never creates a detail query that nobody asked for.
    await tx('public.orders', [upd('public.orders', { id: '3' }, { id: '3', total: '1' })]);
    expect(qc.getQueryState(['orders', 'detail', '3'])).toBeUndefined();
  });

  it('removes a deleted row from every list shape and removes its detail query', async () => {
    const { qc, tx } = await connect();
    const [a, b] = [{ id: '1' }, { id: 2 }];
    qc.setQueryData(['orders', 'list'], [a, b]);
    qc.setQueryData(['orders', 'list', 'page'], { data: [a, b] });
    qc.setQueryData(['orders', 'list', 'infinite'], { pages: [[a], { items: [b] }], pageParams: [0, 1] });
    qc.setQueryData(['orders', 'detail', 2], b);
    qc.setQueryData(['orders', 'detail', 1], a);
    await tx('public.orders', [del('2')]);
    expect(qc.getQueryData(['orders', 'list'])).toEqual([a]);
    expect(qc.getQueryData(['orders', 'list', 'page'])).toEqual({ data: [a] });
    expect(qc.getQueryData(['orders', 'list', 'infinite'])).toEqual({ pages: [[a], { items: [] }], pageParams: [0, 1] });
    expect(qc.getQueryState(['orders', 'detail', 2])).toBeUndefined();
    expect(qc.getQueryData(['orders', 'detail', 1])).toBe(a);
  });

  it('invalidates the lists (once per transaction) on insert, and leaves details alone', async () => {
    const { qc, tx } = await connect();
    let fetches = 0;
    const observer = new QueryObserver(qc, { queryKey: ['orders', 'list'], queryFn: async () => (fetches++, [{ id: '1' }]) });
    const off = observer.subscribe(() => {});
    await until(passes(() => expect(fetches).toBe(1)));
    qc.setQueryData(['orders', 'detail', '1'], { id: '1' });
    qc.setQueryData(['orders', 'list', 'inactive'], []);
    await tx('public.orders', [ins({ id: '7' }), ins({ id: '8' }), ins({ id: '9' })]);
    expect(invalidated(['orders', 'list', 'inactive'])).toBe(true);
    expect(invalidated(['orders', 'detail', '1'])).toBe(false);
    await until(passes(() => expect(fetches).toBe(2)));
    off();
  });

  it("appends inserts to plain-array lists with onInsert: 'append', merging a row already there", async () => {
    const { qc, tx } = await connect({ orders: { ...orders.orders!, onInsert: 'append' } });
    qc.setQueryData(['orders', 'list'], [{ id: 1, total: '1' }]);
    qc.setQueryData(['orders', 'list', 'optimistic'], [{ id: '5', total: '5', pending: true }]);
    await tx('public.orders', [ins({ id: '5', total: '5.00' })]);
    expect(qc.getQueryData(['orders', 'list'])).toEqual([{ id: 1, total: '1' }, { id: '5', total: '5.00' }]);
    expect(qc.getQueryData(['orders', 'list', 'optimistic'])).toEqual([{ id: '5', total: '5.00', pending: true }]);
    expect(invalidated(['orders', 'list'])).toBe(false);
  });

  it('invalidates the whole table when an appended insert meets a list it cannot append to', async () => {
    const { qc, tx } = await connect({ orders: { ...orders.orders!, onInsert: 'append' } });
    qc.setQueryData(['orders', 'list', 'infinite'], { pages: [[{ id: '1' }]], pageParams: [0] });
    qc.setQueryData(['orders', 'detail', '1'], { id: '1' });
    qc.setQueryData(['other'], []);
    await tx('public.orders', [ins({ id: '5' })]);
    expect(invalidated(['orders', 'list', 'infinite'])).toBe(true);
    expect(invalidated(['orders', 'detail', '1'])).toBe(true);
    expect(invalidated(['other'])).toBe(false);
  });

  it('invalidates lists and details of the table on truncate, composite keys included', async () => {
    const lines = { 'shop.lines': { primaryKey: ['order_id', 'n'], lists: ['lines'], detail: (pk: any) => ['line', pk.order_id, pk.n] } };
    const { qc, tx } = await connect({ ...orders, ...lines });
    qc.setQueryData(['lines'], [{ order_id: '1', n: 1, qty: 1 }, { order_id: '2', n: 1, qty: 1 }]);
    qc.setQueryData(['line', 1, 1], { order_id: '1', n: 1, qty: 1 });
    qc.setQueryData(['orders', 'detail', '1'], { id: '1' });
    await tx('shop.lines', [upd('shop.lines', { order_id: '2', n: '1' }, { order_id: '2', n: '1', qty: 5 })]);
    expect(qc.getQueryData(['lines'])).toEqual([{ order_id: '1', n: 1, qty: 1 }, { order_id: '2', n: '1', qty: 5 }]);
    expect(qc.getQueryData(['line', 1, 1])).toEqual({ order_id: '1', n: 1, qty: 1 });
    await tx('shop.lines', [{ table: 'shop.lines', op: 'truncate', pk: null, row: null }]);
    expect(invalidated(['lines'])).toBe(true);
    expect(invalidated(['line', 1, 1])).toBe(true);
    expect(invalidated(['orders', 'detail', '1'])).toBe(false);
  });

  it('invalidates the whole table on reset, and follows on from reset.seq', async () => {
    const { qc, conn, ids } = await connect();
    qc.setQueryData(['orders', 'list'], []);
    qc.setQueryData(['orders', 'detail', '1'], { id: '1' });
    conn.send({ type: 'reset', sub: ids['public.orders']!, reason: 'cursor_expired', seq: 500 });
    expect(await conn.next('subscribe')).toMatchObject({ id: ids['public.orders'], since: 500 });
    expect(invalidated(['orders', 'list'])).toBe(true);
    expect(invalidated(['orders', 'detail', '1'])).toBe(true);
  });

  it('invalidates the whole table when list or detail data has a shape it cannot patch', async () => {
    const { qc, tx } = await connect();
    qc.setQueryData(['orders', 'list'], { total: 3 });
    qc.setQueryData(['orders', 'detail', '1'], { id: '1' });
    await tx('public.orders', [upd('public.orders', { id: '1' }, { id: '1', total: '2' })]);
    expect(invalidated(['orders', 'list'])).toBe(true);
    expect(invalidated(['orders', 'detail', '1'])).toBe(true);
    // The detail was patched anyway: invalidation only refetches.
    expect(qc.getQueryData(['orders', 'detail', '1'])).toEqual({ id: '1', total: '2' });
  });

  it('invalidates the whole table when a detail is not the row itself', async () => {
    const { qc, tx } = await connect();
    qc.setQueryData(['orders', 'list'], []);
    qc.setQueryData(['orders', 'detail', '1'], { order: { id: '1' }, lines: [] });
    await tx('public.orders', [upd('public.orders', { id: '1' }, { id: '1', total: '2' })]);
    expect(qc.getQueryData(['orders', 'detail', '1'])).toEqual({ order: { id: '1' }, lines: [] });
    expect(invalidated(['orders', 'detail', '1'])).toBe(true);
    expect(invalidated(['orders', 'list'])).toBe(true);
  });

  it('applies each transaction inside one notifyManager batch', async () => {
    const { qc, tx } = await connect();
    qc.setQueryData(['orders', 'list'], [{ id: '1' }, { id: '2' }, { id: '3' }]);
    qc.setQueryData(['orders', 'detail', '1'], { id: '1' });
    const heard: string[] = [];
    const offs = [['orders', 'list'], ['orders', 'detail', '1']].map((queryKey) =>
      new QueryObserver(qc, { queryKey, enabled: false }).subscribe(notifyManager.batchCalls(() => heard.push(JSON.stringify(queryKey)))),
    );
    let flushes = 0;
    notifyManager.setBatchNotifyFunction((cb) => {
      flushes++;
      cb();
    });
    await tx('public.orders', [
      upd('public.orders', { id: '1' }, { id: '1', a: 1 }),
      upd('public.orders', { id: '2' }, { id: '2', a: 1 }),
      del('3'),
    ]);
    await until(passes(() => expect(heard.length).toBeGreaterThanOrEqual(2)));
    expect(flushes).toBe(1);
    expect(qc.getQueryData(['orders', 'list'])).toEqual([
      { id: '1', a: 1 },
      { id: '2', a: 1 },
    ]);
    offs.forEach((off) => off());
  });

  it('returns a function that ends every subscription', async () => {
    const { conn, ids } = await connect();
    stop!();
    stop = undefined;
    const gone = await Promise.all([conn.next('unsubscribe'), conn.next('unsubscribe')]);
    expect(gone.map((m) => m.id).sort()).toEqual(Object.values(ids).sort());
  });
});

// Regressions. The fetch race was found by the chaos run (bench/benchmarks/chaos); the detail prefix by the dashboard integration work.
describe('regressions', () => {
  /** syncQueryClient over one table, its subscription answered at seq 0: what each regression starts from (its QueryClient is also the file's `qc`, which afterEach clears). */
  async function syncOrders(tables: SyncTables<unknown>) {
    relay = await startTestRelay();
    client = createRelayClient({ url: relay.url, token: fakeJwt({ tenant_id: '7' }), WebSocket, backoff: { minMs: 10, maxMs: 50 } });
    const conn = await relay.nextConnection();
    const queryClient = (qc = new QueryClient());
    stop = syncQueryClient(client, queryClient, tables);
    const sub = await conn.next('subscribe');
    conn.send({ type: 'subscribed', id: sub.id, seq: 0 });
    return { conn, sub, qc: queryClient };
  }

  it('fetches a list again when an update arrived while its first fetch was in flight', async () => {
    const { conn, sub, qc } = await syncOrders({ orders: { primaryKey: ['id'], lists: ['orders', 'list'] } });

    // The "database": what a fetch returns is what it read when it started.
    let db = [{ id: '1', total: '10.00' }];
    let fetches = 0;
    const gates: Array<() => void> = [];
    const observer = new QueryObserver(qc, {
      queryKey: ['orders', 'list'],
      queryFn: async () => {
        fetches++;
        const seen = db;
        await new Promise<void>((r) => gates.push(r));
        return seen;
      },
    });
    const unobserve = observer.subscribe(() => undefined);
    await until(passes(() => expect(gates).toHaveLength(1)));
    // committed after the fetch read, delivered before it resolves
    db = [{ id: '1', total: '20.00' }];
    conn.send({ type: 'tx', sub: sub.id, seq: 1, at: '2026-01-01T00:00:00Z', origin: null, changes: [{ table: 'public.orders', op: 'update', pk: { id: '1' }, row: { id: '1', total: '20.00' }, old: { total: '10.00' } }] });
    await sleep(50);
    for (const open of gates.splice(0)) open(); // the first fetch lands with what it read: total 10
    await until(passes(() => expect(fetches).toBe(2))); // and a second one follows
    for (const open of gates.splice(0)) open();
    await until(passes(() => expect(qc!.getQueryData(['orders', 'list'])).toEqual([{ id: '1', total: '20.00' }])));
    await until(passes(() => expect(qc!.isFetching()).toBe(0)));
    expect(qc.getQueryData(['orders', 'list'])).toEqual([{ id: '1', total: '20.00' }]);
    unobserve();
  });

  it('keeps one fetch per list in flight while inserts arrive faster than a fetch takes, then lands on the last state', async () => {
    // Found by the long chaos run: every insert restarted the list's fetch (invalidateQueries cancels the one in flight),
    // an abandoned fetch still held its database connection, and the fetches piled up until nothing else got a connection.
    const { conn, sub, qc } = await syncOrders({ orders: { primaryKey: ['id'], lists: ['orders', 'list'] } });

    let db: Array<{ id: string }> = [];
    let running = 0;
    let most = 0;
    let fetches = 0;
    const observer = new QueryObserver(qc, {
      queryKey: ['orders', 'list'],
      queryFn: async () => {
        fetches++;
        most = Math.max(most, ++running);
        const seen = db;
        await sleep(40); // a slow query: inserts come every 5 ms
        running--;
        return seen;
      },
    });
    const unobserve = observer.subscribe(() => undefined);
    for (let seq = 1; seq <= 60; seq++) {
      db = [...db, { id: String(seq) }];
      conn.send({ type: 'tx', sub: sub.id, seq, at: '2026-01-01T00:00:00Z', origin: null, changes: [{ table: 'public.orders', op: 'insert', pk: { id: String(seq) }, row: { id: String(seq) }, old: null }] });
      await sleep(5);
    }
    await until(passes(() => expect(qc!.getQueryData<unknown[]>(['orders', 'list'])).toHaveLength(60)));
    await until(passes(() => expect(qc!.isFetching()).toBe(0)));
    expect(most).toBe(1);
    expect(fetches).toBeLessThan(30); // 60 inserts over ≈ 300 ms coalesce into about one fetch per 40 ms
    unobserve();
  });

  it('invalidates ["orders", "detail", 5, "full"] on truncate when detail(pk) = ["orders", "detail", Number(pk.id), "full"]', async () => {
    const { conn, sub, qc } = await syncOrders({ orders: { primaryKey: ['id'], lists: ['orders', 'list'], detail: (pk) => ['orders', 'detail', Number(pk.id), 'full'] } });
    qc.setQueryData(['orders', 'detail', 5, 'full'], { id: '5', total: '1' });
    qc.setQueryData(['other'], 'untouched');
    conn.send({ type: 'tx', sub: sub.id, seq: 1, at: '2026-01-01T00:00:00Z', origin: null, changes: [{ table: 'public.orders', op: 'truncate', pk: null, row: null, old: null }] });
    await until(passes(() => expect(qc!.getQueryState(['orders', 'detail', 5, 'full'])!.isInvalidated).toBe(true)));
    expect(qc.getQueryState(['other'])!.isInvalidated).toBe(false);
  });
});
