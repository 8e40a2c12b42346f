// What a local Postgres spends on one database, and for whom: CPU by kind of session (from /proc, by application_name)
// and statements by kind (pg_stat_statements), between two snapshots taken from the maintenance database.
import pg from 'pg';
import { TICKER_LOCK } from '../../client/shared/lock-keys.js';
import { postmasterPid, processCpuSeconds, serverCpuSeconds } from './postgres-cpu.js';

/** Who a backend works for, from its application_name (pgrelay names each of its sessions). */
export const backendKinds = ['ticker', 'candidates', 'listeners', 'pools', 'writer', 'background', 'other'] as const;
export type BackendKind = (typeof backendKinds)[number];

export const backendKindLabel: Record<BackendKind, string> = {
  ticker: 'ticker (the leader\'s session)',
  candidates: 'ticker candidates (lock attempts)',
  listeners: 'LISTEN sessions (NOTIFY fan-out)',
  pools: 'relay pools (reads, presence)',
  writer: 'writer sessions',
  background: 'background (WAL writer, checkpointer, autovacuum…)',
  other: 'sessions that ended in the window, postmaster',
};

/** Statements by what they do, from their text in pg_stat_statements. */
export const statementKinds = ['tick', 'snapshot polls', 'ticker sleeps', 'lock attempts', 'presence', 'log reads', 'writes', 'other'] as const;
export type StatementKind = (typeof statementKinds)[number];

function statementKind(query: string): StatementKind {
  if (/relay\.tick\(/.test(query)) return 'tick';
  if (/pg_current_snapshot\(\)/.test(query)) return 'snapshot polls';
  if (/relay\.ticker_sleep\(/.test(query)) return 'ticker sleeps';
  if (/pg_try_advisory_lock/.test(query)) return 'lock attempts';
  if (/relay\.presence_/.test(query)) return 'presence';
  if (/\b(insert into|update|delete from) orders\b/i.test(query)) return 'writes';
  if (/\brelay\.(changes|transactions|log|read_|position|snapshot|watched)/.test(query)) return 'log reads';
  return 'other';
}

export interface ActivitySnapshot {
  at: number;
  /** CPU seconds of the whole server so far (ended backends included); NaN for a server on another machine. */
  total: number;
  backends: Map<number, { kind: BackendKind; cpu: number }>;
  /** Calls per pg_stat_statements entry of the database (undefined: the extension is not there). */
  calls: Map<string, { kind: StatementKind; calls: number }> | undefined;
}

export interface ActivityDelta {
  seconds: number;
  /** CPU seconds of the whole server. */
  total: number;
  byKind: Record<BackendKind, number>;
  /** Statements run, by kind (undefined without pg_stat_statements). */
  calls: Record<StatementKind, number> | undefined;
}

export class PostgresActivity {
  readonly #admin: pg.Client;
  readonly #postmaster: number;
  readonly #database: string;
  readonly #oid: number;
  readonly statements: boolean;

  private constructor(admin: pg.Client, postmaster: number, database: string, oid: number, statements: boolean) {
    this.#admin = admin;
    this.#postmaster = postmaster;
    this.#database = database;
    this.#oid = oid;
    this.statements = statements;
  }

  /**
   * Watches `database` from `adminUrl` (a superuser URL of another database of the same server, so that the
   * snapshots' own statements are not counted). pg_stat_statements is used when the server preloads it.
   */
  static async open(adminUrl: string, database: string): Promise<PostgresActivity> {
    const admin = new pg.Client({ connectionString: adminUrl, application_name: 'pgrelay-bench-monitor' });
    await admin.connect();
    const postmaster = await postmasterPid(admin);
    const { rows } = await admin.query<{ oid: number }>('select oid::int from pg_database where datname = $1', [database]);
    let statements = false;
    try {
      await admin.query('create extension if not exists pg_stat_statements');
      await admin.query('select 1 from pg_stat_statements limit 1');
      statements = true;
    } catch {
      // not preloaded: statement counts are reported as n/a
    }
    return new PostgresActivity(admin, postmaster, database, rows[0]!.oid, statements);
  }

  async snapshot(): Promise<ActivitySnapshot> {
    const at = performance.now();
    const { rows } = await this.#admin.query<{ pid: number; app: string; type: string; db: string | null; leader: boolean }>(
      `select a.pid, coalesce(a.application_name, '') as app, a.backend_type as type, a.datname as db,
              exists (select 1 from pg_locks l where l.pid = a.pid and l.locktype = 'advisory' and l.classid = $1 and l.objid = $2 and l.objsubid = 2 and l.granted) as leader
         from pg_stat_activity a where a.pid <> pg_backend_pid()`,
      [...TICKER_LOCK],
    );
    const backends = new Map<number, { kind: BackendKind; cpu: number }>();
    for (const r of rows) {
      if (r.db !== null && r.db !== this.#database) continue;
      const kind: BackendKind = r.app === 'pgrelay-ticker' ? (r.leader ? 'ticker' : 'candidates')
        : r.app === 'pgrelay-listener' ? 'listeners'
        : r.app === 'pgrelay' ? 'pools'
        : r.app === 'pgrelay-bench-writer' ? 'writer'
        : r.type !== 'client backend' ? 'background' : 'other';
      const cpu = processCpuSeconds(r.pid);
      if (Number.isFinite(cpu)) backends.set(r.pid, { kind, cpu });
    }
    let calls: ActivitySnapshot['calls'];
    if (this.statements) {
      const { rows: s } = await this.#admin.query<{ id: string; query: string; calls: string }>(
        'select queryid::text || userid::text as id, query, calls::text from pg_stat_statements where dbid = $1', [this.#oid]);
      calls = new Map(s.map((r) => [r.id, { kind: statementKind(r.query), calls: Number(r.calls) }]));
    }
    return { at, total: serverCpuSeconds(this.#postmaster), backends, calls };
  }

  /** What happened between two snapshots. A backend that started in between counts from zero; one that ended is in `other`. */
  static delta(a: ActivitySnapshot, b: ActivitySnapshot): ActivityDelta {
    const byKind = Object.fromEntries(backendKinds.map((k) => [k, 0])) as Record<BackendKind, number>;
    for (const [pid, end] of b.backends) byKind[end.kind] += end.cpu - (a.backends.get(pid)?.cpu ?? 0);
    const total = b.total - a.total;
    byKind.other += total - backendKinds.reduce((sum, k) => sum + byKind[k], 0);
    let calls: ActivityDelta['calls'];
    if (a.calls && b.calls) {
      calls = Object.fromEntries(statementKinds.map((k) => [k, 0])) as Record<StatementKind, number>;
      for (const [id, end] of b.calls) calls[end.kind] += end.calls - (a.calls.get(id)?.calls ?? 0);
    }
    return { seconds: (b.at - a.at) / 1000, total, byKind, calls };
  }

  async close(): Promise<void> {
    await this.#admin.end();
  }
}
