// The client library end to end: a real `pgrelay start` process, real Postgres and real QueryClients. Caches fed by
// syncQueryClient and liveQueryOptions stay equal to the database through plain-SQL writes, a truncate and a relay killed with SIGKILL.
import { QueryClient, QueryObserver, type QueryKey } from '@tanstack/query-core';
import pg from 'pg';
import WebSocket from 'ws';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../shared/free-port.js';
import { createOrders, EXAMPLE_COLUMNS, keepWriting, leakGuard, passes, until, useTestDatabase } from '../../db/testing/index.js';
import { useCliProcesses } from '../../relay/__tests__/support/cli-process.js';
import { startTestRelay, token } from '../../relay/__tests__/support/relay-harness.js';
import { createRelayClient, type RelayClient, type Row, type Status, type Subscription } from '../index.js';
import { liveQueryOptions, syncQueryClient } from '../tanstack.js';

const db = useTestDatabase();
const cli = useCliProcesses();

beforeAll(async () => {
  // the example's table (examples/dashboard/schema.sql), with seed rows of its own
  await createOrders(db, { id: 'bigserial primary key', columns: EXAMPLE_COLUMNS });
  await db.query(`
    insert into orders (tenant_id, customer, total, status) values
      ('acme', 'Ada', 120.00, 'paid'), ('acme', 'Grace', 75.50, 'open'), ('globex', 'Hank', 999.99, 'paid'),
      ('acme', 'Alan', 310.25, 'paid'), ('acme', 'Edsger', 42.00, 'cancelled'), ('acme', 'Barbara', 99.90, 'open');
  `);
});
leakGuard(() => db.name);

/** How long a wait may take here: a relay process on a busy 2-core machine. */
const patient = { timeoutMs: 20_000 };

/** The tenant's rows as the relay renders them (int8 and numeric as strings), ordered by id. */
const acmeRowsSql = `select row from relay.snapshot('orders', 'acme') order by (row->>'id')::bigint`;
const byId = (rows: unknown) => [...(rows as Row[])].sort((a, b) => Number(a.id) - Number(b.id));

/** Every seq the tenant's subscriptions must apply after `after`: its own orders changes, and truncates (which have no tenant). */
async function expectedSeqs(after: number): Promise<number[]> {
  const { rows } = await db.query<{ seq: number }>(
    `select distinct t.seq::int as seq from relay.transactions t join relay.changes c using (txid)
      where c.table_name = 'orders' and (c.tenant = 'acme' or c.op = 'truncate') and t.seq > $1 order by 1`,
    [after],
  );
  return rows.map((r) => r.seq);
}

/** A relay client that records every transaction handed to its subscriptions' handlers (that is, applied to a cache). */
function recorded(url: string) {
  // the first cursor each subscription stores is its `subscribed` seq: where it starts (a poll of the cursor may come
  // after the first transaction was applied, and would leave that one out of what is expected)
  const started = new Map<string, number>();
  const cursorStore = { get: () => undefined, set: (id: string, seq: number) => void (started.has(id) || started.set(id, seq)) };
  const client = createRelayClient({ url, token: () => token({ tenant_id: 'acme' }), WebSocket: WebSocket as never, backoff: { minMs: 50, maxMs: 400 }, cursorStore });
  const statuses: Status[] = [];
  client.onStatus(({ to }) => void statuses.push(to));
  const seqs: number[] = [];
  const subs: Subscription[] = [];
  let resets = 0;
  const counting: RelayClient = Object.create(client);
  counting.subscribe = (table, options, handlers = {}) => {
    const s = client.subscribe(table, options, {
      ...handlers,
      onTransaction: (tx) => {
        seqs.push(tx.seq);
        handlers.onTransaction?.(tx);
      },
      onReset: (reason) => {
        resets++;
        handlers.onReset?.(reason);
      },
    });
    subs.push(s);
    return s;
  };
  return { client, counting, statuses, seqs, subs, resets: () => resets, start: () => started.get(subs[0]!.id)! };
}

describe('client library against a real relay', () => {
  it('keeps syncQueryClient and liveQueryOptions caches equal to the database through writes, a truncate and a SIGKILLed relay', async () => {
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}/ws`;
    const first = await cli.startRelay(db, port);
    // The app's own API for syncQueryClient's caches: reads straight from the database.
    const api = new pg.Pool({ connectionString: db.url, max: 3 });
    const writer = await db.connect();
    const a = recorded(url);
    const b = recorded(url);
    const qa = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    const qb = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    const unsubscribe: Array<() => void> = [];
    const observe = (qc: QueryClient, options: { queryKey: QueryKey; queryFn: (ctx: any) => Promise<unknown> }) => {
      const o = new QueryObserver(qc, options);
      unsubscribe.push(o.subscribe(() => {}));
      return o;
    };
    const detailObservers = new Set<string>();
    const observeDetail = (id: string) => {
      detailObservers.add(id);
      observe(qa, {
        queryKey: ['orders', 'detail', Number(id)],
        queryFn: async () => (await api.query(`select row from relay.snapshot('orders', 'acme') where row->>'id' = $1`, [id])).rows[0]?.row ?? null,
      });
    };
    const stopSync = syncQueryClient(a.counting, qa, {
      // The app keys details by number; syncQueryClient compares numbers in keys as strings, like the "5" of an int8 key.
      'public.orders': { primaryKey: ['id'], lists: ['orders', 'list'], detail: (pk) => ['orders', 'detail', pk.id], onInsert: 'invalidate' },
    });
    const live = liveQueryOptions(b.counting, 'public.orders');
    try {
      // The sync subscription is live from `subscribed`; the caches are filled from SQL after it, so nothing falls between.
      await until(passes(() => expect(a.subs[0]?.cursor).toBeDefined()), patient);
      const startA = a.start();
      observe(qa, { queryKey: ['orders', 'list'], queryFn: async () => (await api.query(acmeRowsSql)).rows.map((r) => r.row) });
      for (const { row } of (await db.query(acmeRowsSql)).rows) observeDetail(row.id);
      observe(qb, live);
      await until(passes(() => expect(b.subs[0]?.cursor).toBeDefined()), patient);
      const startB = b.start();

      const sql = (text: string, values?: unknown[]) => writer.query(text, values);
      /** Both clients applied everything committed so far, and every cache equals a fresh read of the database. */
      const converged = async (timeoutMs = 20_000) => {
        const last = (await expectedSeqs(0)).at(-1)!;
        await until(passes(() => expect([a.subs[0]!.cursor! >= last, b.subs[0]!.cursor! >= last]).toEqual([true, true])), { timeoutMs });
        await until(passes(async () => {
          const rows = (await db.query(acmeRowsSql)).rows.map((r) => r.row);
          expect(qa.isFetching()).toBe(0);
          expect(byId(qa.getQueryData(['orders', 'list']))).toEqual(rows);
          const details = qa.getQueryCache().findAll({ queryKey: ['orders', 'detail'] });
          for (const q of details) expect([q.queryKey, q.state.data]).toEqual([q.queryKey, rows.find((r) => Number(r.id) === q.queryKey[2]) ?? null]);
          // A deleted row's detail query is removed; every other observed one is still there.
          const ids = new Set(rows.map((r) => String(r.id)));
          for (const id of detailObservers) if (ids.has(id)) expect(details.some((q) => q.queryKey[2] === Number(id))).toBe(true);
          expect(byId(qb.getQueryData(live.queryKey))).toEqual(rows);
        }), { timeoutMs });
      };
      await converged();

      // Plain SQL from another connection: one of each, a multi-row transaction, another tenant's rows, a rollback.
      await sql(`insert into orders (tenant_id, customer, total) values ('acme', 'Katherine', 10.00)`);
      await sql(`update orders set total = 80.00, status = 'paid' where customer = 'Grace'`);
      await sql(`delete from orders where customer = 'Edsger'`);
      await sql(`begin;
        insert into orders (tenant_id, customer, total) values ('acme', 'Margaret', 1.10), ('acme', 'Frances', 2.20);
        update orders set status = 'cancelled' where customer = 'Ada';
        delete from orders where customer = 'Barbara';
        update orders set total = total + 1 where tenant_id = 'globex';
        commit`);
      await sql(`insert into orders (tenant_id, customer, total) values ('globex', 'Homer', 5.00)`);
      await sql(`begin; insert into orders (tenant_id, customer, total) values ('acme', 'Rolled Back', 1.00); rollback`);
      await converged();
      expect(qa.getQueryData(['orders', 'detail', 5])).toBeUndefined(); // Edsger (id 5) was deleted: its detail query is gone

      await sql(`truncate orders`);
      await sql(`insert into orders (tenant_id, customer, total, status) values ('acme', 'Hedy', 15.00, 'open'), ('acme', 'Radia', 25.00, 'paid'), ('globex', 'Mr Burns', 7.00, 'open')`);
      await converged();
      for (const { row } of (await db.query(acmeRowsSql)).rows) observeDetail(row.id);
      await converged();

      // Writes go on while the relay is killed and started again on the same port.
      const pick = `(select id from orders where tenant_id = 'acme' order by random() limit 1)`;
      const writing = keepWriting(db, (c, n) => {
        const r = n % 10;
        if (r < 2) return c.query(`insert into orders (tenant_id, customer, total) values ('acme', $1, $2)`, [`c${n}`, (n % 97) + 0.25]);
        if (r < 6) return c.query(`update orders set total = total + 1, status = $1 where id = ${pick}`, [['open', 'paid', 'cancelled'][n % 3]]);
        if (r == 6) return c.query(`delete from orders where id = ${pick}`);
        if (r == 7) return c.query(`insert into orders (tenant_id, customer, total) values ('globex', $1, 1)`, [`g${n}`]);
        return c.query(`begin;
          insert into orders (tenant_id, customer, total) values ('acme', 'm${n}a', 3), ('acme', 'm${n}b', 4);
          update orders set status = 'paid', total = total + 0.5 where id = ${pick};
          delete from orders where id = ${pick};
          commit`);
      }, { pauseMs: 5 });
      const afterWrites = async (count: number) => {
        const target = writing.written + count;
        const stopped = writing.ended.then(() => Promise.reject(new Error('the writer stopped')));
        await Promise.race([until(passes(() => expect(writing.written).toBeGreaterThanOrEqual(target)), patient), stopped]);
      };
      await afterWrites(20);
      first.signal('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      await until(passes(() => expect([a.client.status, b.client.status]).toEqual(['reconnecting', 'reconnecting'])), patient);
      await afterWrites(20); // committed while no relay runs
      const second = await cli.startRelay(db, port);
      await until(passes(() => expect([a.client.status, b.client.status]).toEqual(['open', 'open'])), patient);
      await afterWrites(20);
      await writing.stop();
      await converged(30_000);

      expect(a.statuses).toEqual(['open', 'reconnecting', 'open']);
      expect(b.statuses).toEqual(['open', 'reconnecting', 'open']);
      // Each transaction reached the caches exactly once, in order, none missing.
      expect(a.seqs).toEqual(await expectedSeqs(startA));
      expect(b.seqs).toEqual(await expectedSeqs(startB));
      expect([a.resets(), b.resets()]).toEqual([0, 0]);

      second.signal('SIGTERM');
      expect(await second.exited).toBe(0);
    } finally {
      unsubscribe.forEach((off) => off());
      stopSync();
      qa.clear();
      qb.clear();
      a.client.close();
      b.client.close();
      await writer.end();
      await api.end();
    }
  }, 240_000);

  // The fetch race the chaos run found (tanstack.sync.test.ts pins it with a scripted relay), here with a real relay and SQL.
  it('syncQueryClient: an update that commits while a list fetch is in flight outlives the fetch landing with older rows', async () => {
    const relay = await startTestRelay(db);
    const r = recorded(relay.url);
    const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    const stop = syncQueryClient(r.counting, qc, { 'public.orders': { lists: ['orders', 'list'] } });
    let reads = 0;
    let gate: Promise<void> = Promise.resolve();
    let open = () => {};
    // The app's API: it reads the database, then takes a while to answer (network, serialisation).
    const observer = new QueryObserver(qc, {
      queryKey: ['orders', 'list'],
      queryFn: async () => {
        const rows = (await db.query(acmeRowsSql)).rows.map((x) => x.row);
        reads++;
        await gate;
        return rows;
      },
    });
    const off = observer.subscribe(() => {});
    try {
      await until(passes(() => expect(r.subs[0]?.cursor).toBeDefined()), patient);
      await until(passes(() => expect(qc.getQueryData(['orders', 'list'])).toBeDefined()), patient);
      gate = new Promise((resolve) => (open = resolve));
      const before = reads;
      await db.query(`insert into orders (tenant_id, customer, total) values ('acme', 'Annie', 9.00)`); // invalidates: the list refetches
      await until(passes(() => expect(reads).toBe(before + 1)), patient); // the refetch has read the database and is still answering
      const updated = (await db.query(`update orders set total = total + 100 where id = (select min(id) from orders where tenant_id = 'acme') returning id::text`)).rows[0]!.id;
      const seq = (await expectedSeqs(0)).at(-1)!;
      await until(passes(() => expect(r.subs[0]!.cursor).toBeGreaterThanOrEqual(seq)), patient); // the update was patched into the list
      open();
      await until(passes(() => expect(qc.isFetching()).toBe(0)), patient);
      const fresh = (await db.query(acmeRowsSql)).rows.map((x) => x.row);
      expect(byId(qc.getQueryData(['orders', 'list'])).find((x) => x.id === updated)).toEqual(fresh.find((x) => x.id === updated));
    } finally {
      open();
      off();
      stop();
      qc.clear();
      r.client.close();
      await relay.close();
    }
  });
});
