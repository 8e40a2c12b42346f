// Issue 12 (item 7): the client surfaces `relay.unwatch` — onReset('table_unwatched') and onError, no resubscribe — and a live query fails instead of going silently stale.
import { QueryClient, QueryObserver } from '@tanstack/query-core';
import WebSocket from 'ws';
import { beforeAll, describe, expect, it } from 'vitest';
import { createOrders, createTenantTable, insertOrder, leakGuard, until, useTestDatabase } from '../../db/testing/index.js';
import { startTestRelay, token, type TestRelay } from '../../relay/__tests__/support/relay-harness.js';
import { createRelayClient, type RelayError } from '../index.js';
import { liveQueryOptions } from '../tanstack.js';

const db = useTestDatabase();
let relay: TestRelay;

beforeAll(async () => {
  await createOrders(db, { columns: { total: 'int' } });
  await createTenantTable(db, 'items', { columns: { name: 'text' } });
  await insertOrder(db, { tenant_id: 'a', total: 1 });
  relay = await startTestRelay(db);
});
leakGuard(() => db.name);

describe('issue 12: a table unwatched under a client', () => {
  it('ends the subscription with onReset and onError, never resubscribes, and fails a live query', async () => {
    const client = createRelayClient({ url: relay.url, token: () => token({ tenant_id: 'a' }), WebSocket: WebSocket as never });
    const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    const events: string[] = [];
    try {
      const sub = client.subscribe('orders', {}, {
        onReset: (reason) => events.push(`reset ${reason}`),
        onError: (e) => events.push(`error ${e.code}`),
      });
      const observer = new QueryObserver(qc, liveQueryOptions(client, 'orders'));
      const off = observer.subscribe(() => undefined);
      await until(() => observer.getCurrentResult().data !== undefined && sub.cursor !== undefined, { what: 'the live query and the subscription', timeoutMs: 20_000 });
      expect(observer.getCurrentResult().data).toEqual([{ id: 1, tenant_id: 'a', total: 1 }]);

      await db.query(`select relay.unwatch('orders')`);
      await until(() => events.length >= 2, { what: 'onReset and onError', timeoutMs: 20_000 });
      expect(events).toEqual(['reset table_unwatched', 'error table_unwatched']);
      // The live query refetched, which subscribed anew and was refused: the query shows why.
      await until(() => observer.getCurrentResult().status === 'error', { what: 'the live query to fail', timeoutMs: 20_000 });
      expect((observer.getCurrentResult().error as RelayError).code).toBe('unknown_table');

      // Frames on one socket keep their order: had the ended subscription been sent again, its refusal would come first.
      const items: unknown[] = [];
      const other = client.subscribe('items', {}, { onChange: (c) => items.push(c.row) });
      await until(() => other.cursor !== undefined, { what: 'the items subscription', timeoutMs: 20_000 });
      await db.query(`insert into items (tenant_id, name) values ('a', 'x')`);
      await until(() => items.length === 1, { what: 'the items change', timeoutMs: 20_000 });
      expect(events).toEqual(['reset table_unwatched', 'error table_unwatched']);
      off();
    } finally {
      qc.clear();
      client.close();
    }
  });
});
