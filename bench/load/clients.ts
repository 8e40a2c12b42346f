// A load worker process: holds many connections to one target (pgrelay over WebSocket or SSE, or a baseline), records commit→receipt latency of each delivery and counts deliveries exactly.
import { Histogram } from '../lib/histogram.js';
import { openConnection, type ConnectionHandlers, type Delivery, type Wire } from './connection.js';
import { openSseConnection } from './sse-connection.js';
import { sleep } from '../../db/testing/wait.js';
import { account, type ConnectResult, type DeliveryStats, type WorkerCommand, type WorkerReply } from './messages.js';
import { receiptTime, rowTime } from './timestamps.js';

/** One tenant's connections in this worker, and per delivery key how often each of them received it. */
interface Tenant {
  name: string;
  /** Ready connections; each has an index into the count arrays. */
  size: number;
  counts: Map<number, Uint8Array>;
}

let tenants = new Map<string, Tenant>();
let closers: Array<() => void> = [];
let wires: Wire[] = [];
/** Bytes read on every socket at the last reset. */
let bytesAtReset = 0;
let latency = new Histogram();
let fromCommit = new Histogram();
let received = 0;
let warmup = 0;
let wrongTenant = 0;
let closed = 0;
let lastAt = 0;

function bytesRead(): number {
  let sum = 0;
  for (const w of wires) sum += w.socket?.bytesRead ?? 0;
  return sum;
}

function tenantOf(name: string): Tenant {
  let t = tenants.get(name);
  if (!t) tenants.set(name, (t = { name, size: 0, counts: new Map() }));
  return t;
}

function deliver(t: Tenant, index: number, d: Delivery): void {
  const now = receiptTime();
  if (d.row.tenant_id !== t.name) {
    wrongTenant++;
    return;
  }
  const mid = Number(d.row.mid);
  if (d.op !== 'delete' && mid === 0) {
    warmup++;
    return;
  }
  // A delete carries the old row, whose `mid` belongs to its insert or update: the key of a delete is -id.
  const key = d.op === 'delete' ? -Number(d.row.id) : mid;
  received++;
  lastAt = now;
  let c = t.counts.get(key);
  if (!c) t.counts.set(key, (c = new Uint8Array(t.size)));
  if (index < c.length && c[index]! < 255) c[index]! += 1;
  // A delete's row is the old one: its `ts` is not this change's; deletes are counted, not timed.
  if (d.op !== 'delete') latency.record((now - rowTime(String(d.row.ts))) * 1000);
  if (d.op !== 'delete' && d.committedAt) fromCommit.record(Math.max(0, now - rowTime(d.committedAt)) * 1000);
}

async function connect(cmd: Extract<WorkerCommand, { cmd: 'connect' }>): Promise<ConnectResult> {
  const result: ConnectResult = { opened: 0, perTenant: {}, failed: 0, errors: [], compressed: 0 };
  let next = 0;
  const perTenant = new Map<string, number>();
  const one = () =>
    new Promise<void>((resolve) => {
      const name = cmd.tenants[next++]!;
      const t = tenantOf(name);
      let index = -1;
      const k = perTenant.get(name) ?? 0;
      perTenant.set(name, k + 1);
      const token = cmd.users ? cmd.tokens[`${name}/u${k % cmd.users}`]! : cmd.tokens[name]!;
      const wire: Wire = {};
      wires.push(wire);
      const handlers: ConnectionHandlers = {
        onReady(compressed) {
          index = t.size++;
          result.opened++;
          if (compressed) result.compressed++;
          result.perTenant[name] = (result.perTenant[name] ?? 0) + 1;
          resolve();
        },
        onFail(reason) {
          result.failed++;
          if (result.errors.length < 5 && !result.errors.includes(reason)) result.errors.push(reason);
          resolve();
        },
        onClose() {
          closed++;
        },
        onDelivery(d) {
          if (index >= 0) deliver(t, index, d);
        },
      };
      const common = { token, localAddress: cmd.localAddress, timeoutMs: cmd.timeoutMs };
      closers.push(
        cmd.transport === 'sse'
          ? openSseConnection({ ...common, baseUrl: cmd.baseUrl.replace(/^ws/, 'http') }, handlers)
          : openConnection({ ...common, target: cmd.target, baseUrl: cmd.baseUrl, compression: cmd.compression }, handlers, wire),
      );
    });
  const lanes = Array.from({ length: Math.min(cmd.concurrency, cmd.tenants.length) }, async () => {
    while (next < cmd.tenants.length) await one();
  });
  await Promise.all(lanes);
  return result;
}

function reset(): void {
  for (const t of tenants.values()) t.counts.clear();
  latency = new Histogram();
  fromCommit = new Histogram();
  received = 0;
  warmup = 0;
  wrongTenant = 0;
  closed = 0;
  lastAt = 0;
  bytesAtReset = bytesRead();
}

function collect(expected: Record<string, number[]>): DeliveryStats {
  const s: DeliveryStats = { connections: 0, expected: 0, delivered: 0, lost: 0, duplicates: 0, unexpected: 0, wrongTenant, closed, latency: latency.toJSON(), fromCommit: fromCommit.toJSON() };
  for (const t of tenants.values()) account(s, t, expected[t.name] ?? []);
  return s;
}

/** Closes every connection and forgets them, so that the next `connect` starts from none. */
async function drop(): Promise<void> {
  for (const c of closers.splice(0)) c();
  tenants = new Map();
  closers = [];
  wires = [];
  reset();
  // let the closes reach the kernel before the coordinator reads the server's memory or opens the next connections
  await sleep(200);
}

const reply = (m: WorkerReply) => process.send!(m);

process.on('message', (raw) => {
  const m = raw as WorkerCommand & { id: number };
  const run = async () => {
    switch (m.cmd) {
      case 'connect':
        return reply({ id: m.id, ev: 'connected', result: await connect(m) });
      case 'reset':
        reset();
        return reply({ id: m.id, ev: 'reset' });
      case 'progress':
        return reply({ id: m.id, ev: 'progress', progress: { received, warmup, closed, lastAt, bytes: bytesRead() - bytesAtReset } });
      case 'collect':
        return reply({ id: m.id, ev: 'stats', stats: collect(m.expected) });
      case 'drop':
        await drop();
        return reply({ id: m.id, ev: 'dropped' });
      case 'close':
        for (const c of closers.splice(0)) c();
        reply({ id: m.id, ev: 'closed' });
        return void setTimeout(() => process.exit(0), 50);
    }
  };
  run().catch((err: unknown) => reply({ id: m.id, ev: 'error', message: err instanceof Error ? err.message : String(err) }));
});
// The coordinator is gone: so is this worker's reason to exist.
process.on('disconnect', () => process.exit(0));
