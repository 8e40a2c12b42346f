// liveQueryOptions(): a query whose data is the relay snapshot and then stays live, against a real QueryClient and a scripted relay.
import { QueryClient, QueryObserver } from '@tanstack/query-core';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createRelayClient, type RelayClient } from '../index.js';
import type { Change, ServerMessage } from '../shared/protocol.js';
import { liveQueryOptions } from '../tanstack.js';
import { leakGuard, passes, sleep, until } from '../../db/testing/index.js';
import { fakeJwt, startTestRelay, type RelayConnection, type TestRelay } from './support/test-relay.js';

// timers count too: the client's reconnect, heartbeat and refresh timers must end with the test
leakGuard({ timers: true, timeoutMs: 2000 });

let relay: TestRelay | undefined;
let client: RelayClient | undefined;
let qc: QueryClient | undefined;
afterEach(async () => {
  qc?.clear();
  client?.close();
  await relay?.close();
  relay = client = qc = undefined;
});

async function connect() {
  relay = await startTestRelay();
  client = createRelayClient({ url: relay.url, token: fakeJwt({ tenant_id: '7' }), WebSocket });
  const conn = await relay.nextConnection();
  qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return { client, conn, qc };
}

const tx = (sub: string, seq: number, changes: Change[]): ServerMessage => ({ type: 'tx', sub, seq, at: '', origin: null, changes });
const c = (op: Change['op'], id: string | null, row: Record<string, unknown> | null = id ? { id } : null): Change => ({
  table: 'public.orders',
  op,
  pk: id ? { id } : null,
  row: row as any,
});

describe('liveQueryOptions', () => {
  it('returns a query keyed by table and filter that never goes stale', async () => {
    const { client } = await connect();
    const o = liveQueryOptions(client, 'orders', { filter: { status: { eq: 'open' } } });
    expect(o.queryKey).toEqual(['pgrelay', 'orders', { status: { eq: 'open' } }]);
    expect(o.staleTime).toBe(Infinity);
    expect(liveQueryOptions(client, 'orders').queryKey).toEqual(['pgrelay', 'orders', null]);
  });

  it('resolves with the snapshot (all pages), then applies every transaction to the cached rows', async () => {
    const { client, conn, qc } = await connect();
    const opts = liveQueryOptions(client, 'orders', { filter: { status: { eq: 'open' } } });
    const fetched = qc.fetchQuery(opts);
    const sub = await conn.next('subscribe');
    expect(sub).toMatchObject({ table: 'public.orders', filter: { status: { eq: 'open' } }, snapshot: true });
    conn.send({ type: 'subscribed', id: sub.id, seq: 10 });
    conn.send({ type: 'snapshot', sub: sub.id, seq: 10, rows: [{ id: '1', n: 1 }], more: true });
    conn.send({ type: 'snapshot', sub: sub.id, seq: 10, rows: [{ id: '2', n: 1 }], more: false });
    expect(await fetched).toEqual([
      { id: '1', n: 1 },
      { id: '2', n: 1 },
    ]);
    conn.send(tx(sub.id, 11, [c('insert', '3', { id: '3', n: 1 }), c('update', '1', { id: '1', n: 2 })]));
    await until(
      passes(() =>
        expect(qc.getQueryData(opts.queryKey)).toEqual([
          { id: '1', n: 2 },
          { id: '2', n: 1 },
          { id: '3', n: 1 },
        ]),
      ),
    );
    conn.send(tx(sub.id, 12, [c('delete', '2')]));
    await until(passes(() => expect(qc.getQueryData(opts.queryKey)).toEqual([{ id: '1', n: 2 }, { id: '3', n: 1 }])));
    conn.send(tx(sub.id, 13, [c('truncate', null), c('insert', '9')]));
    await until(passes(() => expect(qc.getQueryData(opts.queryKey)).toEqual([{ id: '9' }])));
  });

  it('loses no transaction that arrives while the fetch result is still landing', async () => {
    const { client, conn, qc } = await connect();
    const opts = liveQueryOptions(client, 'orders');
    const fetched = qc.fetchQuery(opts);
    const sub = await conn.next('subscribe');
    // Back to back, in one TCP write: `ws` delivers both before the query stores the snapshot.
    conn.ws.send(JSON.stringify({ type: 'snapshot', sub: sub.id, seq: 10, rows: [{ id: '1' }], more: false }));
    conn.ws.send(JSON.stringify(tx(sub.id, 11, [c('insert', '2')])));
    await fetched;
    await until(passes(() => expect(qc.getQueryData(opts.queryKey)).toEqual([{ id: '1' }, { id: '2' }])));
  });

  it('replaces the data with the new snapshot after a reset', async () => {
    const { client, conn, qc } = await connect();
    const opts = liveQueryOptions(client, 'orders');
    const fetched = qc.fetchQuery(opts);
    const sub = await conn.next('subscribe');
    conn.send({ type: 'snapshot', sub: sub.id, seq: 10, rows: [{ id: '1' }], more: false });
    await fetched;
    conn.send({ type: 'reset', sub: sub.id, reason: 'cursor_expired', seq: 99 });
    expect(await conn.next('subscribe')).toMatchObject({ id: sub.id, snapshot: true });
    conn.send({ type: 'snapshot', sub: sub.id, seq: 99, rows: [{ id: '7' }, { id: '8' }], more: false });
    await until(passes(() => expect(qc.getQueryData(opts.queryKey)).toEqual([{ id: '7' }, { id: '8' }])));
  });

  it('serves a refetch from the live rows without subscribing again, and unsubscribes when the query is removed', async () => {
    const { client, conn, qc } = await connect();
    const opts = liveQueryOptions(client, 'orders');
    const observer = new QueryObserver(qc, opts);
    const off = observer.subscribe(() => {});
    const sub = await conn.next('subscribe');
    conn.send({ type: 'snapshot', sub: sub.id, seq: 10, rows: [{ id: '1' }], more: false });
    await until(passes(() => expect(observer.getCurrentResult().data).toEqual([{ id: '1' }])));
    conn.send(tx(sub.id, 11, [c('insert', '2')]));
    await until(passes(() => expect(observer.getCurrentResult().data).toHaveLength(2)));
    await qc.invalidateQueries({ queryKey: opts.queryKey });
    expect(observer.getCurrentResult().data).toEqual([{ id: '1' }, { id: '2' }]);
    await sleep(20);
    expect(conn.received.filter((m) => m.type === 'subscribe')).toHaveLength(1);
    off();
    qc.removeQueries({ queryKey: opts.queryKey });
    expect(await conn.next('unsubscribe')).toEqual({ type: 'unsubscribe', id: sub.id });
    // A new query for the same key subscribes afresh.
    const again = qc.fetchQuery(opts);
    const sub2 = await conn.next('subscribe');
    conn.send({ type: 'snapshot', sub: sub2.id, seq: 12, rows: [{ id: '1' }, { id: '2' }], more: false });
    expect(await again).toHaveLength(2);
  });

  it('fails the query when the relay refuses the subscription, and ends it', async () => {
    const { client, conn, qc } = await connect();
    const opts = liveQueryOptions(client, 'secrets');
    const fetched = qc.fetchQuery(opts);
    const sub = await conn.next('subscribe');
    conn.send({ type: 'error', code: 'table_not_allowed', message: 'No.', id: sub.id });
    await expect(fetched).rejects.toMatchObject({ name: 'RelayError', code: 'table_not_allowed' });
    expect(await conn.next('unsubscribe')).toEqual({ type: 'unsubscribe', id: sub.id });
  });
});
