// Chaos subscribers: real client-library clients across tenants, tables, filters and snapshots, recording what they apply.
import { QueryClient } from '@tanstack/query-core';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { createRelayClient, type RelayClient, type Subscription } from '../../../client/index.js';
import { syncQueryClient } from '../../../client/tanstack.js';
import type { Filter } from '../../../client/shared/protocol.js';
import { sleep } from '../../../db/testing/wait.js';
import { TENANTS } from './workload.js';

/** What one subscription was asked for. */
export interface SubscriptionSpec {
  /** Tenant of the token; null = an all_tenants token. */
  tenant: string | null;
  table: string;
  filter?: Filter;
  snapshot?: boolean;
}

/** What one subscription applied, in order. */
export interface Recording {
  spec: SubscriptionSpec;
  handle: Subscription;
  /** Cursor when the subscription first had one (live subscriptions). */
  start: number | undefined;
  /** The last snapshot: rows and position. */
  snapshot: { seq: number; rows: Array<Record<string, unknown>> } | undefined;
  /**
   * Each transaction applied: its seq, how many changes it had, and how many belonged to another tenant. Only
   * snapshot subscriptions keep the changes themselves (to rebuild the table); a long run would not fit otherwise.
   */
  applied: Array<{ seq: number; count: number; foreign: number; changes?: Array<{ op: string; row: Record<string, unknown> | null }> }>;
  resets: number;
}

export interface ChaosClient {
  client: RelayClient;
  recordings: Recording[];
  /** TanStack-synced clients keep their QueryClient here. */
  queryClient?: QueryClient;
  tenant: string | null;
  closes: Map<number, number>;
}

export interface ClientOptions {
  url: string;
  secret: string;
  /** Token lifetime in seconds (short lifetimes make tokens expire mid-stream). */
  ttl: number;
  /** Sometimes answer the token function too late, so that the relay closes with 4001 first. */
  flakyToken: boolean;
}

async function mint(secret: string, tenant: string | null, ttl: number): Promise<string> {
  return new SignJWT(tenant === null ? { all_tenants: true } : { tenant_id: tenant })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttl)
    .sign(new TextEncoder().encode(secret));
}

function record(client: RelayClient, spec: SubscriptionSpec): Recording {
  const rec: Recording = { spec, handle: undefined as never, start: undefined, snapshot: undefined, applied: [], resets: 0 };
  rec.handle = client.subscribe(spec.table, { ...(spec.filter ? { filter: spec.filter } : {}), ...(spec.snapshot ? { snapshot: true } : {}) }, {
    onSnapshot: (rows, seq) => {
      rec.snapshot = { seq, rows: rows as Array<Record<string, unknown>> };
    },
    onTransaction: (tx) => {
      if (rec.start === undefined && !spec.snapshot) rec.start = tx.seq; // refined below from the cursor
      const foreign = spec.tenant === null ? 0 : tx.changes.filter((c) => c.op !== 'truncate' && (c.row as Record<string, unknown> | null)?.tenant_id !== spec.tenant).length;
      rec.applied.push({
        seq: tx.seq,
        count: tx.changes.length,
        foreign,
        ...(spec.snapshot ? { changes: tx.changes.map((c) => ({ op: c.op, row: c.row as Record<string, unknown> | null })) } : {}),
      });
    },
    onReset: () => {
      rec.resets++;
    },
  });
  return rec;
}

/** Creates the subscriber population: `n` clients cycling through kinds of subscriptions. */
export function createSubscribers(n: number, o: ClientOptions): ChaosClient[] {
  const out: ChaosClient[] = [];
  for (let i = 0; i < n; i++) {
    const kind = i % 6;
    const tenant = kind === 5 ? null : TENANTS[i % TENANTS.length]!;
    // three in twelve: a short run sees tokens expire mid-stream even when faults cut most sockets first
    const flaky = o.flakyToken && i % 4 === 3;
    const closes = new Map<number, number>();
    let calls = 0;
    // observe the close codes the client sees (4001 expiry, 4008 backpressure, 1001, 1006 cuts…)
    class CountingWebSocket extends WebSocket {
      constructor(url: string, protocols: string[]) {
        super(url, protocols);
        this.addEventListener('close', (e) => closes.set(e.code, (closes.get(e.code) ?? 0) + 1));
      }
    }
    const client = createRelayClient({
      // all-tenant clients are tagged, so that the balancer stalls one of them: they receive every burst
      url: kind === 5 ? `${o.url}?feed=all` : o.url,
      WebSocket: CountingWebSocket as never,
      backoff: { minMs: 50, maxMs: 1000 },
      token: async () => {
        calls++;
        // a flaky identity provider: every second token it gives comes after the last one already expired
        if (flaky && calls % 2 === 0) await sleep((o.ttl + 1) * 1000);
        return mint(o.secret, tenant, o.ttl);
      },
    });
    const c: ChaosClient = { client, recordings: [], tenant, closes };
    if (kind === 0) c.recordings.push(record(client, { tenant, table: 'public.orders' }));
    if (kind === 1) c.recordings.push(record(client, { tenant, table: 'public.orders', filter: { status: { eq: 'open' } } }));
    if (kind === 2) {
      c.recordings.push(record(client, { tenant, table: 'public.items', snapshot: true }));
      c.recordings.push(record(client, { tenant, table: 'public.events' }));
    }
    if (kind === 3) c.recordings.push(record(client, { tenant, table: 'public.orders', filter: { total: { gte: 250 }, status: { eq: 'paid' } }, snapshot: true }));
    if (kind === 4) {
      // a TanStack-synced dashboard: lists patched by primary key, refetched on insert, truncate or reset
      c.queryClient = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity, gcTime: Infinity, retry: 3, retryDelay: 200 } } });
      syncQueryClient(client, c.queryClient, { 'public.orders': { primaryKey: ['id'], lists: ['orders', 'list'], detail: (pk) => ['orders', 'detail', String(pk.id)], onInsert: 'invalidate' } });
    }
    if (kind === 5) {
      c.recordings.push(record(client, { tenant: null, table: 'public.orders' }));
      c.recordings.push(record(client, { tenant: null, table: 'public.plans' }));
      c.recordings.push(record(client, { tenant: null, table: 'public.events' }));
    }
    out.push(c);
  }
  return out;
}
