// A load worker of bench/sse.ts: holds WebSocket or SSE subscriptions to the relay (one transport at a time), records
// commit→receipt latency of each delivery and counts every delivery per connection, like clients.ts does for the suite.
import type { HistogramData } from '../lib/histogram.js';
import { Histogram } from '../lib/histogram.js';
import { openConnection, type Delivery } from './connection.js';
import { openSseConnection } from './sse-connection.js';
import { receiptTime, rowTime } from './timestamps.js';

export type Transport = 'websocket' | 'sse';

/** Coordinator → worker; each reply repeats the `id`. */
export type StreamCommand =
  | { cmd: 'connect'; transport: Transport; port: number; tenants: string[]; tokens: Record<string, string>; localAddress?: string; concurrency: number; timeoutMs: number }
  | { cmd: 'reset' }
  | { cmd: 'progress' }
  | { cmd: 'collect'; expected: Record<string, number[]> }
  | { cmd: 'drop' };

export interface StreamStats {
  connections: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  /** Deliveries of keys not committed in this measurement. */
  unexpected: number;
  wrongTenant: number;
  /** Connections that closed after they were ready. */
  closed: number;
  latency: HistogramData;
}

export type StreamReply =
  | { id: number; ev: 'connected'; opened: number; failed: number; errors: string[] }
  | { id: number; ev: 'reset' | 'dropped' }
  | { id: number; ev: 'progress'; received: number; warmup: number }
  | { id: number; ev: 'stats'; stats: StreamStats }
  | { id: number; ev: 'error'; message: string };

interface Tenant {
  size: number;
  counts: Map<number, Uint8Array>;
}

let tenants = new Map<string, Tenant>();
let closers: Array<() => void> = [];
let latency = new Histogram();
let received = 0;
let warmup = 0;
let wrongTenant = 0;
let closed = 0;

function deliver(name: string, t: Tenant, index: number, d: Delivery): void {
  const now = receiptTime();
  if (d.row.tenant_id !== name) return void wrongTenant++;
  const mid = Number(d.row.mid);
  if (d.op !== 'delete' && mid === 0) return void warmup++;
  // as in clients.ts: a delete carries the old row, so its key is -id and it is counted, not timed
  const key = d.op === 'delete' ? -Number(d.row.id) : mid;
  received++;
  let c = t.counts.get(key);
  if (!c) t.counts.set(key, (c = new Uint8Array(t.size)));
  if (index < c.length && c[index]! < 255) c[index]! += 1;
  if (d.op !== 'delete') latency.record((now - rowTime(String(d.row.ts))) * 1000);
}

async function connect(m: Extract<StreamCommand, { cmd: 'connect' }>): Promise<StreamReply> {
  let opened = 0;
  let failed = 0;
  const errors: string[] = [];
  let next = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const name = m.tenants[next++]!;
      let t = tenants.get(name);
      if (!t) tenants.set(name, (t = { size: 0, counts: new Map() }));
      const tenant = t;
      let index = -1;
      const handlers = {
        onReady() {
          index = tenant.size++;
          opened++;
          resolve();
        },
        onFail(reason: string) {
          failed++;
          if (errors.length < 5 && !errors.includes(reason)) errors.push(reason);
          resolve();
        },
        onClose() {
          closed++;
        },
        onDelivery(d: Delivery) {
          if (index >= 0) deliver(name, tenant, index, d);
        },
      };
      const common = { token: m.tokens[name]!, localAddress: m.localAddress, timeoutMs: m.timeoutMs };
      closers.push(
        m.transport === 'sse'
          ? openSseConnection({ ...common, baseUrl: `http://127.0.0.1:${m.port}` }, handlers)
          : openConnection({ ...common, target: 'pgrelay', baseUrl: `ws://127.0.0.1:${m.port}` }, handlers),
      );
    });
  await Promise.all(Array.from({ length: Math.min(m.concurrency, m.tenants.length) }, async () => {
    while (next < m.tenants.length) await one();
  }));
  return { id: 0, ev: 'connected', opened, failed, errors };
}

function reset(): void {
  for (const t of tenants.values()) t.counts.clear();
  latency = new Histogram();
  received = 0;
  warmup = 0;
  wrongTenant = 0;
  closed = 0;
}

function collect(expected: Record<string, number[]>): StreamStats {
  const s: StreamStats = { connections: 0, expected: 0, delivered: 0, lost: 0, duplicates: 0, unexpected: 0, wrongTenant, closed, latency: latency.toJSON() };
  for (const [name, t] of tenants) {
    s.connections += t.size;
    const keys = expected[name] ?? [];
    s.expected += keys.length * t.size;
    for (const key of keys) {
      const c = t.counts.get(key);
      for (let i = 0; i < t.size; i++) {
        const n = c?.[i] ?? 0;
        if (n === 0) s.lost++;
        else (s.delivered++, (s.duplicates += n - 1));
      }
    }
    const wanted = new Set(keys);
    for (const [key, c] of t.counts) if (!wanted.has(key)) s.unexpected += c.reduce((a, b) => a + b, 0);
  }
  return s;
}

/** Closes every connection and forgets them: the next measurement (the other transport) starts from none. */
async function drop(): Promise<void> {
  for (const c of closers.splice(0)) c();
  tenants = new Map();
  closers = [];
  reset();
  // let the closes reach the kernel before the coordinator reads the relay's memory or starts the next mode
  await new Promise((r) => setTimeout(r, 200));
}

process.on('message', (raw) => {
  const m = raw as StreamCommand & { id: number };
  const reply = (r: StreamReply) => process.send!({ ...r, id: m.id });
  const run = async (): Promise<StreamReply> => {
    switch (m.cmd) {
      case 'connect':
        return connect(m);
      case 'reset':
        return (reset(), { id: 0, ev: 'reset' });
      case 'progress':
        return { id: 0, ev: 'progress', received, warmup };
      case 'collect':
        return { id: 0, ev: 'stats', stats: collect(m.expected) };
      case 'drop':
        return (await drop(), { id: 0, ev: 'dropped' });
    }
  };
  run().then(reply, (err: unknown) => reply({ id: 0, ev: 'error', message: err instanceof Error ? err.message : String(err) }));
});
// The coordinator is gone: so is this worker's reason to exist.
process.on('disconnect', () => process.exit(0));
