// The IPC messages between a benchmark's coordinator and its load workers (load/clients.ts) and writer (load/writer.ts).
import type { HistogramData } from '../lib/histogram.js';
import type { TargetName } from '../lib/targets.js';

/** Coordinator → load worker. Every command carries an `id` that its reply repeats. */
export type WorkerCommand =
  | {
      cmd: 'connect';
      target: TargetName;
      baseUrl: string;
      /** The tenant of each new connection. */
      tenants: string[];
      tokens: Record<string, string>;
      /** Users per tenant (fan-out --rules): the k-th connection of tenant t uses token `t/u<k mod users>`; 0: the tenant's token. */
      users?: number;
      /** Loopback source address (127.0.0.x) so that many sockets do not run out of local ports. */
      localAddress?: string;
      /** Handshakes in flight at once. */
      concurrency: number;
      timeoutMs: number;
      /** Offer permessage-deflate (fan-out --compression). */
      compression?: boolean;
      /** pgrelay only: subscribe over Server-Sent Events (`GET /sse`) instead of a WebSocket (bench:sse). */
      transport?: Transport;
    }
  | { cmd: 'reset' }
  | { cmd: 'progress' }
  | { cmd: 'collect'; expected: Record<string, number[]> }
  /** Close every connection and forget them: the next `connect` starts from none (bench:sse, one transport after the other). */
  | { cmd: 'drop' }
  | { cmd: 'close' };

export type Transport = 'websocket' | 'sse';

export interface ConnectResult {
  opened: number;
  /** Connections opened per tenant. */
  perTenant: Record<string, number>;
  failed: number;
  /** Up to 5 distinct failure reasons. */
  errors: string[];
  /** Opened connections that negotiated permessage-deflate. */
  compressed: number;
}

export interface Progress {
  /** Counted deliveries since the last reset. */
  received: number;
  /** Deliveries of warm-up and probe rows (`mid` 0), which are not counted. */
  warmup: number;
  /** Connections that closed after they were ready. */
  closed: number;
  /** Epoch ms of the last counted delivery (0: none). */
  lastAt: number;
  /** Bytes read from the connections' TCP sockets since the last reset: WebSocket frames as they came over the wire. */
  bytes: number;
}

/** Exact accounting of one worker's connections against what the writer committed. */
export interface DeliveryStats {
  connections: number;
  expected: number;
  /** Expected deliveries that arrived (once or more). */
  delivered: number;
  lost: number;
  duplicates: number;
  /** Deliveries of keys the writer did not commit in this measurement (left over from an earlier one). */
  unexpected: number;
  /** Rows of another tenant than the connection's: must be 0 for every target. */
  wrongTenant: number;
  closed: number;
  latency: HistogramData;
  /** pgrelay only: receipt − the transaction's commit time from the database clock (`at` of the frame). */
  fromCommit: HistogramData;
}

export type WorkerReply =
  | { id: number; ev: 'connected'; result: ConnectResult }
  | { id: number; ev: 'reset' }
  | { id: number; ev: 'progress'; progress: Progress }
  | { id: number; ev: 'stats'; stats: DeliveryStats }
  | { id: number; ev: 'dropped' }
  | { id: number; ev: 'closed' }
  | { id: number; ev: 'error'; message: string };

/** Coordinator → writer. */
export interface WriterCommand {
  cmd: 'run';
  databaseUrl: string;
  tenants: string[];
  /** Transactions per second; 0 writes `count` transactions as fast as `connections` allow. */
  rate: number;
  /** Seconds of counted writes (paced mode). */
  duration: number;
  /** Seconds of uncounted inserts (`mid` 0) at the same rate before the counted ones. */
  warmup: number;
  /** Burst mode: how many transactions (of the first tenant, when `noise` is given). */
  count?: number;
  /** Burst mode: this many more transactions of the other tenants, spread evenly among the first tenant's. */
  noise?: number;
  /** Share of inserts, updates, deletes (percent). */
  mix: [number, number, number];
  /** First `mid` of this measurement, so that keys never repeat across measurements. */
  midBase: number;
  /** Rows each insert transaction writes, in one statement (one larger frame); default 1. Updates and deletes stay single-row. */
  batch?: number;
  connections: number;
  seed: number;
}

export interface WriterResult {
  /** Keys committed per tenant: `mid` for inserts and updates, `-id` for deletes. */
  committed: Record<string, number[]>;
  transactions: number;
  inserts: number;
  updates: number;
  deletes: number;
  /** Seconds from the first counted write to the last commit. */
  elapsed: number;
  /** Epoch ms of the last counted commit. */
  lastCommitAt: number;
  /** Transactions that were due but waited for a free connection, at worst. */
  maxBacklog: number;
  errors: string[];
}

export type WriterReply = { ev: 'done'; result: WriterResult } | { ev: 'error'; message: string };

/** One tenant's ready connections in a load worker, and for each delivery key how often each of them received it. */
export interface TenantCounts {
  size: number;
  counts: Map<number, Uint8Array>;
}

/** Adds one tenant's connections and its expected, delivered, lost, duplicated and unexpected deliveries to `s`. */
export function account(s: Pick<DeliveryStats, 'connections' | 'expected' | 'delivered' | 'lost' | 'duplicates' | 'unexpected'>, t: TenantCounts, keys: readonly number[]): void {
  s.connections += t.size;
  s.expected += keys.length * t.size;
  for (const key of keys) {
    const c = t.counts.get(key);
    for (let i = 0; i < t.size; i++) {
      const n = c?.[i] ?? 0;
      if (n === 0) s.lost++;
      else {
        s.delivered++;
        s.duplicates += n - 1;
      }
    }
  }
  const wanted = new Set(keys);
  for (const [key, c] of t.counts) if (!wanted.has(key)) s.unexpected += c.reduce((a, b) => a + b, 0);
}
