// The DBA's view of what was emitted: relay.audit rows, filtered, oldest first.
import { sql } from 'kysely';
import type { RelayDb } from './kysely.js';

/** One change with its transaction, as `pgrelay audit --json` prints it. */
export interface AuditEntry {
  seq: number;
  /** Commit time, ISO 8601 in UTC ending in `Z`, microseconds included. */
  committed_at: string;
  tenant: string | null;
  table: string;
  op: 'insert' | 'update' | 'delete' | 'truncate';
  pk: unknown;
  row: unknown;
  old: unknown;
  db_user: string;
  application_name: string | null;
  actor: string | null;
  origin: string | null;
}

/** An entry with the columns the text output shows besides the pinned JSON fields. */
export interface AuditRow extends AuditEntry {
  client_addr: string | null;
}

/** Filters of {@link readAudit}; all optional and AND-ed. */
export interface AuditFilter {
  /** `schema.table` (a bare name means `public.<name>`). */
  table?: string;
  /**
   * What this tenant received: its own changes, every truncate of a table (truncates reach all tenants), and
   * the updates that moved a row away from it (`old_tenant`: it received a delete).
   */
  tenant?: string;
  /** Only changes committed at or after this instant. */
  since?: Date;
  /** Only transactions with a larger seq. */
  afterSeq?: number;
  /** Only transactions up to this seq (inclusive). */
  upToSeq?: number;
  /** At most this many changes (the newest ones). Default: all. */
  limit?: number;
}

interface Raw {
  seq: string;
  committed_at: string;
  tenant: string | null;
  table: string;
  op: AuditEntry['op'];
  pk: unknown;
  row: unknown;
  old: unknown;
  db_user: string;
  application_name: string | null;
  client_addr: string | null;
  actor: string | null;
  origin: string | null;
}

/** Streams matching changes in (seq, change id) order through a server-side cursor. */
export async function* readAudit(db: RelayDb, filter: AuditFilter = {}): AsyncGenerator<AuditRow> {
  const table = filter.table === undefined ? null : filter.table.includes('.') ? filter.table : `public.${filter.table}`;
  const tenant = filter.tenant ?? null;
  // a row that moved away from the tenant: it received a delete
  const movedAway = tenant !== null ? sql`or a.old_tenant = ${tenant}` : sql``;
  // The newest `limit` changes are chosen on the bigint seq (an order on seq::text put 9 after 12), then
  // printed oldest first. Timestamps are rendered in UTC with a `Z` whatever the session's TimeZone.
  const query = sql<Raw>`
    select n.seq::text as seq, to_char(n.committed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as committed_at,
           n.tenant, n."table", n.op, n.pk, n.row, n.old, n.db_user, n.application_name, host(n.client_addr) as client_addr, n.actor, n.origin
    from (
      select a.seq, a.change_id, a.committed_at, a.tenant, a."table", a.op, a.pk, a.row, a.old,
             a.db_user, a.application_name, a.client_addr, a.actor, a.origin
      from relay.audit a
      where (${table}::text is null or a."table" = ${table})
        and (${tenant}::text is null or a.tenant = ${tenant} or (a.tenant is null and a.op = 'truncate') ${movedAway})
        and (${filter.since?.toISOString() ?? null}::timestamptz is null or a.committed_at >= ${filter.since?.toISOString() ?? null})
        and a.seq > ${filter.afterSeq ?? 0} and a.seq <= ${filter.upToSeq ?? Number.MAX_SAFE_INTEGER}
      order by a.seq desc, a.change_id desc
      limit ${filter.limit ?? null}
    ) n
    order by n.seq, n.change_id`.compile(db);
  for await (const chunk of db.getExecutor().stream(query, 1000)) {
    for (const r of chunk.rows) {
      yield {
        seq: Number(r.seq), committed_at: r.committed_at, tenant: r.tenant, table: r.table, op: r.op,
        pk: r.pk, row: r.row, old: r.old, db_user: r.db_user, application_name: r.application_name, actor: r.actor, origin: r.origin,
        client_addr: r.client_addr,
      };
    }
  }
}

/** The pinned `--json` shape (DESIGN.md): exactly these fields, in this order. */
export function auditJson(e: AuditRow): AuditEntry {
  return {
    seq: e.seq, committed_at: e.committed_at, tenant: e.tenant, table: e.table, op: e.op, pk: e.pk, row: e.row, old: e.old,
    db_user: e.db_user, application_name: e.application_name, actor: e.actor, origin: e.origin,
  };
}

/** The last seq committed before `instant`, 0 when none was. */
export async function seqBefore(db: RelayDb, instant: Date): Promise<number> {
  const { rows } = await sql<{ seq: string }>`
    select coalesce(max(seq), 0)::text as seq from relay.transactions where committed_at < ${instant.toISOString()}::timestamptz`.execute(db);
  return Number(rows[0]!.seq);
}

/** `1h`, `30m`, `2d`, `45s`, `1w` or an ISO date → the instant that long ago (or that date). */
export function parseSince(value: string, now = new Date()): Date | undefined {
  const m = /^(\d+)\s*(s|m|h|d|w)$/.exec(value.trim());
  if (m) {
    const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[m[2] as 's' | 'm' | 'h' | 'd' | 'w'];
    return new Date(now.getTime() - Number(m[1]) * unit);
  }
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
