// The capture-overhead benchmark's runs: pgbench per mode and client count, interleaved, with the server's CPU and (mode s) a relay running.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from '../../../client/shared/free-port.js';
import { sleep, until } from '../../../db/testing/wait.js';
import { processCpuSeconds, serverCpuSeconds } from '../../lib/postgres-cpu.js';
import { onCleanup, track, type Spawned } from '../../lib/processes.js';
import { spawnRelay } from '../../lib/targets.js';
import type { BenchServer } from '../../lib/throwaway-postgres.js';
import { install, MODE_NAMES, reset, rotation, type Mode } from './modes.js';
import { pgbench } from './pgbench.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface Run {
  mode: Mode;
  clients: number;
  workload: '1-row' | 'bulk';
  repeat: number;
  tps: number;
  transactions: number;
  /** Postgres CPU (all processes) from the start of the run until the log is numbered and drained, seconds. */
  pgCpu: number;
  /** The relay process's CPU over the same time (mode s), seconds. */
  relayCpu: number;
  /** Transactions numbered by the ticker (mode s). */
  numbered: number;
  notifications: number;
  waits: Map<string, number>;
}

/** The LISTEN session that drains `items` (mode b's channel) and `relay`, in its own process, in every mode. */
export class Listener {
  #child: ChildProcess;
  private constructor(child: ChildProcess) {
    this.#child = child;
  }

  static async start(url: string): Promise<Listener> {
    const child = track(fork(path.join(here, 'listener.ts'), [url, 'items', 'relay'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' }));
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`listener exited with ${code}`)));
    });
    onCleanup(() => void child.kill('SIGTERM'));
    return new Listener(child);
  }

  count(): Promise<{ count: number; bytes: number; idleMs: number }> {
    return new Promise((resolve) => {
      this.#child.once('message', (m: { count: number; bytes: number; idleMs: number }) => resolve(m));
      this.#child.send({ type: 'count' });
    });
  }

  /** Waits until nothing new arrived for 300 ms, so that no run pays for the previous one's backlog. */
  async drained(): Promise<number> {
    for (;;) {
      const c = await this.count();
      if (c.idleMs >= 300) return c.count;
      await sleep(100);
    }
  }
}

/** A relay process (its ticker, LISTEN session and reads) on the bench database, as users run it: not pinned. */
async function startRelay(server: BenchServer): Promise<Spawned> {
  const port = await freePort();
  const relay = spawnRelay({ name: 'relay', databaseUrl: server.url('bench'), port, secret: 'capture-bench-secret-capture-bench-secret', pinned: false });
  onCleanup(() => relay.stop());
  await relay.waitFor(/pgrelay listening on|"level":"(error|fatal)"/, 60_000);
  if (!relay.alive) throw new Error(`the relay did not start:\n${relay.output()}`);
  await until(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, { what: 'the relay to be ready (/readyz 200)', timeoutMs: 30_000, intervalMs: 100 });
  return relay;
}

/**
 * Samples what pgbench's backends are doing every 20 ms while a run lasts (pg_stat_activity): "running" when active
 * with no wait event, else the wait event (Lock:object = the NOTIFY queue's lock at commit, IO:WALSync = the commit
 * flush, Client:ClientRead = waiting for pgbench's next statement). Counts are backend-samples.
 */
function sampleWaits(server: BenchServer): { stop: () => Promise<Map<string, number>> } {
  const counts = new Map<string, number>();
  const client = new pg.Client({ connectionString: server.url('bench'), application_name: 'bench-waits' });
  let stopping = false;
  const done = (async () => {
    await client.connect();
    while (!stopping) {
      const { rows } = await client.query<{ w: string }>(
        `select case when state = 'active' and wait_event is null then 'running'
                     when state like 'idle%' and wait_event is null then 'idle'
                     else coalesce(wait_event_type || ':' || wait_event, state) end as w
           from pg_stat_activity where application_name = 'pgbench' and backend_type = 'client backend'`);
      for (const { w } of rows) counts.set(w, (counts.get(w) ?? 0) + 1);
      await sleep(20);
    }
    await client.end();
  })();
  return { stop: async () => { stopping = true; await done; return counts; } };
}

/** Waits until every transaction in relay.log has its seq (mode s), then returns how many were numbered. */
async function numbered(db: pg.Client): Promise<number> {
  for (;;) {
    const { rows } = await db.query<{ pending: boolean; n: string }>(
      `select exists (select 1 from relay.log l where not exists (select 1 from relay.transactions t where t.txid = l.txid)) as pending,
              (select count(*) from relay.transactions)::text as n`);
    if (!rows[0]!.pending) return Number(rows[0]!.n);
    await sleep(100);
  }
}

export interface ThroughputOptions {
  seconds: number;
  clients: number[];
  repeat: number;
  modes: Mode[];
  scripts: { oneRow: string; bulk: string };
  postmaster: number;
  /** Also run 1000-row statements (1 client). */
  bulk: boolean;
}

export async function throughput(server: BenchServer, admin: pg.Client, listener: Listener, o: ThroughputOptions): Promise<Run[]> {
  const runs: Run[] = [];
  let k = 0;
  // the system mode matters under concurrency and the row-level variant only for bulk statements' sake: 1000-row runs take a, b, f, c, d
  const bulkModes = o.modes.filter((m) => m !== 's');
  const total = o.repeat * (o.clients.length * o.modes.length + (o.bulk ? bulkModes.length : 0));
  const started = Date.now();
  const one = async (mode: Mode, clients: number, workload: Run['workload'], repeat: number) => {
    await reset(admin);
    await install(admin, mode, workload === 'bulk' ? 'bulk_items' : 'items');
    const relay = mode === 's' ? await startRelay(server) : undefined;
    try {
      const before = await listener.drained();
      const cpu0 = serverCpuSeconds(o.postmaster);
      const relay0 = relay ? processCpuSeconds(relay.pid) : 0;
      const sampler = sampleWaits(server);
      // stop() may run twice (here and after a failed pgbench): it only ends the sampling loop
      const r = await pgbench(server, workload === 'bulk' ? o.scripts.bulk : o.scripts.oneRow, clients, o.seconds).finally(sampler.stop);
      const waits = await sampler.stop();
      const n = relay ? await numbered(admin) : 0;
      const notifications = (await listener.drained()) - before;
      const pgCpu = serverCpuSeconds(o.postmaster) - cpu0;
      const relayCpu = relay ? processCpuSeconds(relay.pid) - relay0 : 0;
      runs.push({ mode, clients, workload, repeat, tps: r.tps, transactions: r.transactions, pgCpu, relayCpu, numbered: n, notifications, waits });
      const eta = Math.round(((Date.now() - started) / runs.length) * (total - runs.length) / 1000);
      console.log(`  [${runs.length}/${total}] repeat ${repeat + 1} ${workload} ${clients} client(s) ${MODE_NAMES[mode].padEnd(40)} ${r.tps.toFixed(1).padStart(8)} tps` +
        `  ${((pgCpu * 1e6) / r.transactions).toFixed(0).padStart(5)} µs Postgres CPU/tx${relay ? `, relay ${((relayCpu * 1e6) / r.transactions).toFixed(0)} µs/tx, ${n} numbered` : ''}` +
        `  (${notifications} notifications; ~${eta}s left)`);
    } finally {
      await relay?.stop();
    }
  };
  for (let rep = 0; rep < o.repeat; rep++) {
    for (const clients of o.clients) {
      for (const mode of rotation(o.modes, k++)) await one(mode, clients, '1-row', rep);
    }
    // 1000-row statements, 1 client (more would deadlock on the overlapping UPDATE ranges, and rows/s is the point here)
    if (o.bulk) for (const mode of rotation(bulkModes, k++)) await one(mode, 1, 'bulk', rep);
  }
  return runs;
}
