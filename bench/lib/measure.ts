// One measurement under load: probe that the target streams, write R transactions/s for D seconds, drain, and account for every delivery.
import pg from 'pg';
import { sleep } from '../../db/testing/wait.js';
import type { DeliveryStats } from '../load/messages.js';
import { runWriter, type Fleet } from './fleet.js';
import { ms } from './format.js';
import type { Histogram } from './histogram.js';
import { busyPercent, cpuTicks } from './machine.js';
import { postmasterPid, serverCpuSeconds } from './postgres-cpu.js';
import { childPids, cpuSeconds, cpuSplit, loadCpu, taskset } from './processes.js';
import type { TargetServer } from './targets.js';

export interface LoadSpec {
  /** Connections. */
  n: number;
  /** Tenants. */
  t: number;
  /** Transactions per second. */
  r: number;
  /** Seconds of counted writes. */
  d: number;
  /** Seconds of uncounted writes first (JIT, caches). */
  warmup: number;
  mix: [number, number, number];
  /** Rows per insert transaction (one statement); default 1. */
  batch?: number;
}

/** Percentiles of a histogram in ms. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** One measurement: the load, the workers' exact accounting of every delivery (load/messages.ts DeliveryStats), and what it cost. */
export interface LoadResult extends LoadSpec, Omit<DeliveryStats, 'latency' | 'fromCommit'> {
  target: string;
  transactions: number;
  /** Transactions per second the writer achieved. */
  achievedRate: number;
  writerBacklog: number;
  writerErrors: string[];
  /** Latency in ms over every timed delivery (inserts and updates). */
  latency: LatencySummary;
  /** pgrelay only (its frames carry the commit time): receipt − commit on the database clock. */
  fromCommit?: LatencySummary;
  /** Deliveries per second offered: expected deliveries / writing time. */
  offeredPerSec: number;
  /** Deliveries per second received: delivered / (writing time + drain). */
  deliveredPerSec: number;
  /** From the last commit until the last expected delivery arrived (or gave up). */
  drainMs: number;
  /** CPU use in % of one core over the writing time + drain: the server process, and the load workers. */
  serverCpu: number;
  /** The part of serverCpu spent in the kernel (system time: socket writes and reads, epoll). */
  serverSystemCpu: number;
  loadCpu: number;
  /** How busy the load core was, whoever used it (workers, writer, Postgres, anything else): at ~100 % the load side is the limit. */
  loadCoreBusy: number;
  /** Postgres CPU (every server process) per committed transaction over the writing time + drain, µs; NaN for a remote server. */
  postgresCpuUsPerTx: number;
  /**
   * The same by process, µs per transaction: backends by application_name (the bench writer, pgrelay's ticker and
   * listener, the relay's pool, a baseline's LISTEN), background processes by type; "exited" is CPU of backends that
   * ended during the run.
   */
  postgresCpuByProcess?: Record<string, number>;
  /** Bytes the load workers read from their TCP sockets over the whole measurement (probe and warm-up included). */
  wireBytes: number;
  /** Deliveries over the same span: counted ones, and those of the probe and warm-up rows. */
  wireDeliveries: number;
}

type Percentile = 'p50' | 'p90' | 'p99' | 'p999' | 'max';

/** The latency cells of a table row, in ms, for the percentiles given (all five by default). */
export function latencyCells(l: Pick<LatencySummary, Percentile>, keys: readonly Percentile[] = ['p50', 'p90', 'p99', 'p999', 'max']): string[] {
  return keys.map((k) => ms(l[k]));
}

/** The CPU cells of a table row: the server's, and the load workers' / the whole load core's, in % of one core. */
export function cpuCells(r: Pick<LoadResult, 'serverCpu' | 'loadCpu' | 'loadCoreBusy'>): string[] {
  return [`${r.serverCpu.toFixed(0)} %`, `${r.loadCpu.toFixed(0)} % / ${r.loadCoreBusy.toFixed(0)} %`];
}

/** The target delivered nothing within the probe's time: it does not stream (yet). */
export class NotStreamingError extends Error {
  override readonly name = 'NotStreamingError';
}


function alive(server: TargetServer): void {
  if (!server.process.alive) throw new Error(`${server.target} exited during the measurement:\n${server.process.output()}`);
}

/** Commits one uncounted row (`mid` 0) of `tenant` and waits until some connection receives it. */
export async function probe(server: TargetServer, fleet: Fleet, databaseUrl: string, tenant = 't0', timeoutMs = 10_000): Promise<void> {
  const before = (await fleet.progress()).warmup;
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    await c.query(`insert into orders (tenant_id, customer, amount, status) values ($1, 'probe', 0, 'probe')`, [tenant]);
  } finally {
    await c.end();
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await fleet.progress()).warmup > before) return;
    alive(server);
    await sleep(50);
  }
  throw new NotStreamingError(`no change reached a subscribed socket within ${timeoutMs / 1000} s of its commit`);
}

export async function measure(server: TargetServer, fleet: Fleet, databaseUrl: string, spec: LoadSpec, midBase: number): Promise<LoadResult> {
  await fleet.reset();
  await probe(server, fleet, databaseUrl);
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  const postmaster = await postmasterPid(admin).finally(() => admin.end());
  const pg0 = serverCpuSeconds(postmaster);
  const perPid0 = childCpu(postmaster);
  const cpu0 = { server: cpuSeconds(server.process.pid), serverSystem: cpuSplit(server.process.pid).system, load: fleet.cpuSeconds(), core: cpuTicks(taskset ? loadCpu : undefined), at: performance.now() };
  const w = await runWriter({
    cmd: 'run',
    databaseUrl,
    tenants: Array.from({ length: spec.t }, (_, i) => `t${i}`),
    rate: spec.r,
    duration: spec.d,
    warmup: spec.warmup,
    mix: spec.mix,
    midBase,
    connections: Math.min(32, Math.max(4, Math.ceil(spec.r / 250))),
    seed: 42,
    ...(spec.batch ? { batch: spec.batch } : {}),
  });
  const wroteAt = performance.now();
  let expected = 0;
  for (const [tenant, keys] of Object.entries(w.committed)) expected += keys.length * (fleet.perTenant.get(tenant) ?? 0);

  // Drain: wait for the last delivery; a target that makes no progress for 3 s has lost the rest.
  let last = -1;
  let lastChange = performance.now();
  let lastAt = 0;
  for (;;) {
    const p = await fleet.progress();
    const now = performance.now();
    lastAt = p.lastAt;
    if (p.received >= expected) break;
    if (p.received !== last) (last = p.received), (lastChange = now);
    if (now - lastChange > 3000 || now - wroteAt > 60_000) break;
    await sleep(20);
  }
  // From the last commit to the last delivery, both on the wall clock (the workers stamp each receipt).
  const drainMs = Math.max(0, lastAt - w.lastCommitAt);
  alive(server);
  const wall = (performance.now() - cpu0.at) / 1000;
  const serverCpu = ((cpuSeconds(server.process.pid) - cpu0.server) / wall) * 100;
  const serverSystemCpu = ((cpuSplit(server.process.pid).system - cpu0.serverSystem) / wall) * 100;
  const loadUse = ((fleet.cpuSeconds() - cpu0.load) / wall) * 100;
  const loadCoreBusy = busyPercent(cpu0.core, cpuTicks(taskset ? loadCpu : undefined));
  const postgresCpuUsPerTx = ((serverCpuSeconds(postmaster) - pg0) * 1e6) / Math.max(1, w.transactions);
  const postgresCpuByProcess = await cpuByProcess(databaseUrl, postmaster, perPid0, serverCpuSeconds(postmaster) - pg0, w.transactions);
  const wire = await fleet.progress();
  const { latency, fromCommit, ...accounting } = await fleet.collect(w.committed);
  const elapsed = Math.max(w.elapsed, 1e-3);
  return {
    ...spec,
    ...accounting,
    target: server.target,
    transactions: w.transactions,
    achievedRate: w.transactions / elapsed,
    writerBacklog: w.maxBacklog,
    writerErrors: w.errors,
    latency: summarize(latency),
    ...(fromCommit.count > 0 ? { fromCommit: summarize(fromCommit) } : {}),
    offeredPerSec: accounting.expected / elapsed,
    deliveredPerSec: accounting.delivered / (elapsed + drainMs / 1000),
    drainMs,
    serverCpu,
    serverSystemCpu,
    loadCpu: loadUse,
    loadCoreBusy,
    postgresCpuUsPerTx,
    ...(postgresCpuByProcess ? { postgresCpuByProcess } : {}),
    wireBytes: wire.bytes,
    wireDeliveries: wire.received + wire.warmup,
  };
}

/** A histogram of µs as percentiles in ms. */
function summarize(h: Histogram): LatencySummary {
  const ms = (us: number) => us / 1000;
  return { count: h.count, p50: ms(h.percentile(50)), p90: ms(h.percentile(90)), p99: ms(h.percentile(99)), p999: ms(h.percentile(99.9)), max: ms(h.max), mean: ms(h.mean) };
}

/** CPU seconds of each live child of the postmaster. */
function childCpu(postmaster: number): Map<number, number> {
  const out = new Map<number, number>();
  if (!Number.isFinite(postmaster)) return out;
  for (const pid of childPids(postmaster)) {
    const c = cpuSeconds(pid);
    if (Number.isFinite(c)) out.set(pid, c);
  }
  return out;
}

/** Splits the server's CPU since `before` by process (see LoadResult.postgresCpuByProcess). */
async function cpuByProcess(databaseUrl: string, postmaster: number, before: Map<number, number>, total: number, transactions: number): Promise<Record<string, number> | undefined> {
  if (!Number.isFinite(postmaster) || transactions === 0) return undefined;
  const after = childCpu(postmaster);
  const c = new pg.Client({ connectionString: databaseUrl, application_name: 'pgrelay-bench-probe' });
  await c.connect();
  let names: Map<number, string>;
  try {
    const { rows } = await c.query<{ pid: number; name: string }>(
      `select pid, case when backend_type = 'client backend' then coalesce(nullif(application_name, ''), '(no name)') else backend_type end as name
       from pg_stat_activity where pid <> pg_backend_pid()`);
    names = new Map(rows.map((r) => [r.pid, r.name]));
  } finally {
    await c.end();
  }
  const by: Record<string, number> = {};
  let counted = 0;
  for (const [pid, cpu] of after) {
    const used = cpu - (before.get(pid) ?? 0);
    if (used <= 0) continue;
    const name = names.get(pid) ?? (pid === postmaster ? 'postmaster' : 'other');
    by[name] = (by[name] ?? 0) + used;
    counted += used;
  }
  by.exited = Math.max(0, total - counted);
  for (const k of Object.keys(by)) by[k] = (by[k]! * 1e6) / transactions;
  return by;
}
