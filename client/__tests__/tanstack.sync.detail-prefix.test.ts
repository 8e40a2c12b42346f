// syncQueryClient regression: the whole-table invalidation finds the detail prefix even when the key converts the primary key (Number(pk.id)).
import { notifyManager, QueryClient } from '@tanstack/query-core';
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
let stop: (() => void) | undefined;
afterEach(async () => {
  stop?.();
  client?.close();
  qc?.clear();
  await relay?.close();
  relay = client = qc = stop = undefined;
  notifyManager.setBatchNotifyFunction((cb) => cb());
});

it('invalidates ["orders", "detail", 5, "full"] on truncate when detail(pk) = ["orders", "detail", Number(pk.id), "full"]', async () => {
  relay = await startTestRelay();
  client = createRelayClient({ url: relay.url, token: fakeJwt({ tenant_id: '7' }), WebSocket, backoff: { minMs: 10, maxMs: 50 } });
  const conn = await relay.nextConnection();
  qc = new QueryClient();
  stop = syncQueryClient(client, qc, { orders: { primaryKey: ['id'], lists: ['orders', 'list'], detail: (pk) => ['orders', 'detail', Number(pk.id), 'full'] } });
  const sub = await conn.next('subscribe');
  conn.send({ type: 'subscribed', id: sub.id, seq: 0 });
  qc.setQueryData(['orders', 'detail', 5, 'full'], { id: '5', total: '1' });
  qc.setQueryData(['other'], 'untouched');
  conn.send({ type: 'tx', sub: sub.id, seq: 1, at: '2026-01-01T00:00:00Z', origin: null, changes: [{ table: 'public.orders', op: 'truncate', pk: null, row: null, old: null }] });
  await eventually(() => expect(qc!.getQueryState(['orders', 'detail', 5, 'full'])!.isInvalidated).toBe(true));
  expect(qc.getQueryState(['other'])!.isInvalidated).toBe(false);
});
