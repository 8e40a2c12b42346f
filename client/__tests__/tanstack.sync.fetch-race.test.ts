// syncQueryClient regression (found by the chaos run): a patch that lands while the list is being fetched must not be lost when the fetch resolves with older data.
import { notifyManager, QueryClient, QueryObserver } from '@tanstack/query-core';
import { afterEach, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createRelayClient, type RelayClient } from '../index.js';
import { syncQueryClient } from '../tanstack.js';
import { useLeakCheck } from './support/leak-check.js';
import { eventually, fakeJwt, startTestRelay, type TestRelay } from './support/test-relay.js';

useLeakCheck();

let relay: TestRelay | undefined;
let client: RelayClient | undefined;
let qc: QueryClient | undefined;
const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  client?.close();
  qc?.clear();
  await relay?.close();
  relay = client = qc = undefined;
  notifyManager.setBatchNotifyFunction((cb) => cb());
});

it('fetches a list again when an update arrived while its first fetch was in flight', async () => {
  relay = await startTestRelay();
  client = createRelayClient({ url: relay.url, token: fakeJwt({ tenant_id: '7' }), WebSocket, backoff: { minMs: 10, maxMs: 50 } });
  const conn = await relay.nextConnection();
  qc = new QueryClient();
  cleanups.push(syncQueryClient(client, qc, { orders: { primaryKey: ['id'], lists: ['orders', 'list'] } }));
  const sub = await conn.next('subscribe');
  conn.send({ type: 'subscribed', id: sub.id, seq: 0 });

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
  cleanups.push(observer.subscribe(() => undefined));
  await eventually(() => expect(gates).toHaveLength(1));
  // committed after the fetch read, delivered before it resolves
  db = [{ id: '1', total: '20.00' }];
  conn.send({ type: 'tx', sub: sub.id, seq: 1, at: '2026-01-01T00:00:00Z', origin: null, changes: [{ table: 'public.orders', op: 'update', pk: { id: '1' }, row: { id: '1', total: '20.00' }, old: { total: '10.00' } }] });
  await new Promise((r) => setTimeout(r, 50));
  for (const open of gates.splice(0)) open(); // the first fetch lands with what it read: total 10
  await eventually(() => expect(fetches).toBe(2)); // and a second one follows
  for (const open of gates.splice(0)) open();
  await eventually(() => expect(qc!.getQueryData(['orders', 'list'])).toEqual([{ id: '1', total: '20.00' }]));
  await eventually(() => expect(qc!.isFetching()).toBe(0));
  expect(qc.getQueryData(['orders', 'list'])).toEqual([{ id: '1', total: '20.00' }]);
});
