// Row types from a kysely-codegen DB interface: selectable columns as JSON, bare and public.-qualified names, unknown tables refused.
import { QueryClient, type QueryKey } from '@tanstack/query-core';
import { queryOptions } from '@tanstack/react-query';
import type { ColumnType, Generated, GeneratedAlways } from 'kysely';
import { describe, expectTypeOf, it } from 'vitest';
import { WebSocket as NodeWebSocket } from 'ws';
import { createRelayClient, type ChangeEvent, type RelayTransaction, type Row } from '../index.js';
import { useSubscription } from '../react.js';
import { liveQueryOptions, syncQueryClient } from '../tanstack.js';

// What kysely-codegen emits for Postgres.
type Int8 = ColumnType<string, bigint | number | string, bigint | number | string>;
type Numeric = ColumnType<string, number | string, number | string>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type JsonPrimitive = boolean | number | string | null;
type JsonArray = JsonValue[];
type JsonObject = { [x: string]: JsonValue | undefined };
type JsonValue = JsonArray | JsonObject | JsonPrimitive;
type Json = ColumnType<JsonValue, string, string>;
// kysely-codegen's own Generated, which unwraps a ColumnType (kysely's nests it: both must work).
type CodegenGenerated<T> = T extends ColumnType<infer S, infer I, infer U> ? ColumnType<S, I | undefined, U> : ColumnType<T, T | undefined, T>;

interface Orders {
  id: Generated<Int8>;
  total: Numeric;
  status: string;
  note: string | null;
  created_at: Generated<Timestamp>;
  shipped_at: Timestamp | null;
  meta: Json;
  attachment: Buffer | null;
  qty: number;
  version: GeneratedAlways<number>;
  secret: ColumnType<never, string, string>;
}
interface AuditEvents {
  id: CodegenGenerated<Int8>;
  at: Timestamp;
}
interface DB {
  orders: Orders;
  'audit.events': AuditEvents;
}

type OrderRow = {
  id: string;
  total: string;
  status: string;
  note: string | null;
  created_at: string;
  shipped_at: string | null;
  meta: JsonValue;
  attachment: string | null;
  qty: number;
  version: number;
};

const client = createRelayClient<DB>({ url: 'ws://localhost:8080/ws', token: 'x', WebSocket: NodeWebSocket });
const untyped = createRelayClient({ url: 'ws://localhost:8080/ws', token: async () => 'x' });

describe('client types', () => {
  it('gives a table its selectable columns as they arrive in JSON', () => {
    client.subscribe('orders', {}, {
      onChange(change, tx) {
        expectTypeOf(change.row).toEqualTypeOf<OrderRow | null>();
        expectTypeOf(change.old).toEqualTypeOf<Partial<OrderRow> | null | undefined>();
        expectTypeOf(change.pk).toEqualTypeOf<Partial<OrderRow> | null>();
        expectTypeOf(change.self).toEqualTypeOf<boolean>();
        expectTypeOf(tx).toEqualTypeOf<RelayTransaction<OrderRow>>();
      },
      onSnapshot(rows, seq) {
        expectTypeOf(rows).toEqualTypeOf<OrderRow[]>();
        expectTypeOf(seq).toEqualTypeOf<number>();
      },
    });
  });

  it('accepts public.-qualified names and other schemas, and refuses unknown tables', () => {
    client.subscribe('public.orders', {}, { onChange: (c) => expectTypeOf(c).toEqualTypeOf<ChangeEvent<OrderRow>>() });
    client.subscribe('audit.events', {}, { onSnapshot: (rows) => expectTypeOf(rows).toEqualTypeOf<Array<{ id: string; at: string }>>() });
    // @ts-expect-error not a table of DB
    client.subscribe('customers');
    // @ts-expect-error a non-public table needs its schema
    client.subscribe('events');
    // @ts-expect-error only public tables may go bare, and only bare ones get public.
    client.subscribe('public.audit.events');
  });

  it('types filters by column', () => {
    client.subscribe('orders', { filter: { status: { eq: 'open' }, total: { gt: '10' } } });
    // @ts-expect-error no such column
    client.subscribe('orders', { filter: { colour: { eq: 'red' } } });
  });

  it('is Row for everything without a DB type', () => {
    untyped.subscribe('anything.at_all', {}, { onChange: (c) => expectTypeOf(c.row).toEqualTypeOf<Row | null>() });
    expectTypeOf(untyped.status).toEqualTypeOf<'connecting' | 'open' | 'reconnecting' | 'closed'>();
  });

  it('types named events by table and operation', () => {
    client.on('orders:insert', (row, change) => {
      expectTypeOf(row).toEqualTypeOf<OrderRow | null>();
      expectTypeOf(change.op).toEqualTypeOf<'insert' | 'update' | 'delete' | 'truncate'>();
    });
    client.on('public.orders:*', (row) => expectTypeOf(row).toEqualTypeOf<OrderRow | null>());
    expectTypeOf(client.on('orders:delete', () => {})).toEqualTypeOf<() => void>();
    // @ts-expect-error: not a table of DB
    client.on('nope:insert', () => {});
    // @ts-expect-error: not an operation
    client.on('orders:upsert', () => {});
    untyped.on('anything:update', (row) => expectTypeOf(row).toEqualTypeOf<Row | null>());
  });

  it('accepts the browser WebSocket and the ws package', () => {
    createRelayClient({ url: '', token: '', WebSocket: globalThis.WebSocket });
    createRelayClient({ url: '', token: '', WebSocket: NodeWebSocket });
  });

  it('types the TanStack adapters from the same DB', () => {
    const o = liveQueryOptions(client, 'orders', { filter: { status: { eq: 'open' } } });
    expectTypeOf(o.queryFn).returns.resolves.toEqualTypeOf<OrderRow[]>();
    const qc = new QueryClient();
    expectTypeOf(qc.fetchQuery(o)).resolves.toEqualTypeOf<OrderRow[]>();
    // Fits react-query's queryOptions (and so useQuery).
    expectTypeOf(queryOptions(o).queryKey).toExtend<QueryKey>();
    // @ts-expect-error unknown table
    liveQueryOptions(client, 'nope');
    syncQueryClient(client, qc, {
      'public.orders': { primaryKey: ['id'], lists: ['orders', 'list'], detail: (pk) => ['orders', 'detail', pk.id] },
      'audit.events': { lists: ['events'], onInsert: 'append' },
    });
    // @ts-expect-error unknown table
    syncQueryClient(client, qc, { nope: { lists: [] } });
    useSubscription(client, 'orders', { snapshot: true }, { onSnapshot: (rows) => expectTypeOf(rows).toEqualTypeOf<OrderRow[]>() });
  });
});
