// The coordinator's side of the load: worker processes (load/clients.ts) pinned to the load CPU, holding the connections, and the writer process.
import { Histogram } from './histogram.js';
import { cpuSeconds, loadCpu, spawnNode, type Spawned } from './processes.js';
import type { TargetName } from './targets.js';
import type { ConnectResult, DeliveryStats, Progress, Transport, WorkerCommand, WorkerReply, WriterCommand, WriterReply, WriterResult } from '../load/messages.js';

type Payload<E extends WorkerReply['ev']> = Extract<WorkerReply, { ev: E }>;

class Worker {
  readonly process: Spawned;
  readonly localAddress: string | undefined;
  #next = 1;
  readonly #pending = new Map<number, (m: WorkerReply) => void>();

  constructor(index: number, nofile: number, localAddress: string | undefined) {
    this.localAddress = localAddress;
    this.process = spawnNode('bench/load/clients.ts', { name: `load-${index}`, cpu: loadCpu, nofile, ipc: true, nodeArgs: ['--max-old-space-size=4096'] });
    this.process.child.on('message', (raw) => {
      const m = raw as WorkerReply;
      this.#pending.get(m.id)?.(m);
      this.#pending.delete(m.id);
    });
    this.process.child.once('exit', () => {
      for (const [, resolve] of this.#pending) resolve({ id: 0, ev: 'error', message: `${this.process.name} exited:\n${this.process.output()}` });
      this.#pending.clear();
    });
  }

  ask<E extends WorkerReply['ev']>(cmd: WorkerCommand, ev: E): Promise<Payload<E>> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, (m) => (m.ev === ev ? resolve(m as Payload<E>) : reject(new Error(m.ev === 'error' ? m.message : `unexpected ${m.ev}`))));
      this.process.child.send({ ...cmd, id });
    });
  }
}

export interface ConnectOptions {
  /** Handshakes in flight at once, per worker (default 200). */
  concurrency?: number;
  /** Users per tenant (fan-out --rules): the k-th connection of tenant t uses token `t/u<k mod users>`; 0: the tenant's token. */
  users?: number;
  /** Offer permessage-deflate (fan-out --compression). */
  compression?: boolean;
  /** pgrelay over a WebSocket (default) or Server-Sent Events (bench:sse). */
  transport?: Transport;
}

/** Totals over every worker; `latency` is the merged histogram. */
export interface FleetStats extends Omit<DeliveryStats, 'latency' | 'fromCommit'> {
  latency: Histogram;
  fromCommit: Histogram;
}

/** N load processes; connection i is of tenant `t${i % T}` and lives on worker i % N. */
export class Fleet {
  readonly workers: Worker[];
  /** Ready connections per tenant. */
  readonly perTenant = new Map<string, number>();
  connections = 0;

  constructor(count: number, opts: { nofile?: number; manyAddresses?: boolean } = {}) {
    // Each worker its own loopback source address once sockets could outnumber the ~28k ephemeral ports of one.
    this.workers = Array.from({ length: count }, (_, i) => new Worker(i, opts.nofile ?? 65536, opts.manyAddresses ? `127.0.0.${2 + i}` : undefined));
  }

  /** Adds connections until there are `total`, spread over `tenants`. */
  async connect(target: TargetName, baseUrl: string, tokens: Record<string, string>, total: number, tenants: number, o: ConnectOptions = {}): Promise<ConnectResult> {
    const { concurrency = 200, users = 0, compression = false, transport = 'websocket' } = o;
    const byWorker: string[][] = this.workers.map(() => []);
    for (let i = this.connections; i < total; i++) byWorker[i % this.workers.length]!.push(`t${i % tenants}`);
    const results = await Promise.all(
      this.workers.map((w, i) =>
        w.ask({ cmd: 'connect', target, baseUrl, tenants: byWorker[i]!, tokens, users, localAddress: w.localAddress, concurrency, timeoutMs: 60_000, compression, transport }, 'connected'),
      ),
    );
    const sum: ConnectResult = { opened: 0, perTenant: {}, failed: 0, errors: [], compressed: 0 };
    for (const r of results) {
      sum.opened += r.result.opened;
      sum.compressed += r.result.compressed;
      for (const [t, n] of Object.entries(r.result.perTenant)) {
        sum.perTenant[t] = (sum.perTenant[t] ?? 0) + n;
        this.perTenant.set(t, (this.perTenant.get(t) ?? 0) + n);
      }
      sum.failed += r.result.failed;
      for (const e of r.result.errors) if (sum.errors.length < 5 && !sum.errors.includes(e)) sum.errors.push(e);
    }
    this.connections += sum.opened;
    return sum;
  }

  /** Closes every connection; the next {@link connect} starts from none. */
  async drop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.ask({ cmd: 'drop' }, 'dropped')));
    this.perTenant.clear();
    this.connections = 0;
  }

  async reset(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.ask({ cmd: 'reset' }, 'reset')));
  }

  async progress(): Promise<Progress> {
    const all = await Promise.all(this.workers.map((w) => w.ask({ cmd: 'progress' }, 'progress')));
    return all.reduce<Progress>(
      (a, p) => ({ received: a.received + p.progress.received, warmup: a.warmup + p.progress.warmup, closed: a.closed + p.progress.closed, lastAt: Math.max(a.lastAt, p.progress.lastAt), bytes: a.bytes + p.progress.bytes }),
      { received: 0, warmup: 0, closed: 0, lastAt: 0, bytes: 0 },
    );
  }

  async collect(expected: Record<string, number[]>): Promise<FleetStats> {
    const all = await Promise.all(this.workers.map((w) => w.ask({ cmd: 'collect', expected }, 'stats')));
    const latency = new Histogram();
    const fromCommit = new Histogram();
    const s: FleetStats = { connections: 0, expected: 0, delivered: 0, lost: 0, duplicates: 0, unexpected: 0, wrongTenant: 0, closed: 0, latency, fromCommit };
    for (const { stats } of all) {
      latency.merge(stats.latency);
      fromCommit.merge(stats.fromCommit);
      s.connections += stats.connections;
      s.expected += stats.expected;
      s.delivered += stats.delivered;
      s.lost += stats.lost;
      s.duplicates += stats.duplicates;
      s.unexpected += stats.unexpected;
      s.wrongTenant += stats.wrongTenant;
      s.closed += stats.closed;
    }
    return s;
  }

  cpuSeconds(): number {
    return this.workers.reduce((a, w) => a + cpuSeconds(w.process.pid), 0);
  }

  async close(): Promise<void> {
    await Promise.all(
      this.workers.map(async (w) => {
        if (w.process.alive) await w.ask({ cmd: 'close' }, 'closed').catch(() => undefined);
        await w.process.stop(2000);
      }),
    );
  }
}

/** Runs the writer in its own process (pinned with the load) and returns what it committed. */
export async function runWriter(cmd: WriterCommand): Promise<WriterResult> {
  const p = spawnNode('bench/load/writer.ts', { name: 'writer', cpu: loadCpu, ipc: true });
  try {
    // Bounded: a writer stuck on Postgres must not hold the run forever.
    const limitMs = cmd.rate > 0 ? (cmd.warmup + cmd.duration) * 3000 + 60_000 : 600_000;
    const reply = await new Promise<WriterReply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the writer did not finish within ${limitMs / 1000} s`)), limitMs);
      p.child.once('message', (m) => (clearTimeout(timer), resolve(m as WriterReply)));
      p.child.once('exit', () => (clearTimeout(timer), reject(new Error(`the writer exited early:\n${p.output()}`))));
      p.child.send(cmd);
    });
    if (reply.ev === 'error') throw new Error(`the writer failed: ${reply.message}`);
    return reply.result;
  } finally {
    await p.stop(2000);
  }
}
