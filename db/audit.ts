// The DBA's view of what was emitted: relay.audit rows, filtered, oldest first.
import { sql } from 'kysely';
import type { RelayDb } from './kysely.js';

/** One change with its transaction, as `pgrelay audit --json` prints it. */
export interface AuditEntry {
  seq: number;
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

/** Filters of {@link readAudit}; all optional and AND-ed. */
export interface AuditFilter {
  /** `schema.table` (a bare name means `public.<name>`). */
  table?: string;
  tenant?: string;
  /** Only changes committed at or after this instant. */
  since?: Date;
  /** At most this many changes (the newest ones). Default: all. */
  limit?: number;
}

/** Streams matching changes in (seq, change id) order through a server-side cursor. */
export async function* readAudit(db: RelayDb, filter: AuditFilter = {}): AsyncGenerator<AuditEntry> {
  const table = filter.table === undefined ? null : filter.table.includes('.') ? filter.table : `public.${filter.table}`;
  const limit = filter.limit ?? null;
  const query = sql<{ seq: string } & Omit<AuditEntry, 'seq'>>`
    select * from (
      select seq::text as seq, to_char(committed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as committed_at,
             tenant, "table", op, pk, row, old, db_user, application_name, actor, origin, change_id
      from relay.audit
      where (${table}::text is null or "table" = ${table})
        and (${filter.tenant ?? null}::text is null or tenant = ${filter.tenant ?? null})
        and (${filter.since?.toISOString() ?? null}::timestamptz is null or committed_at >= ${filter.since?.toISOString() ?? null})
      order by seq desc, change_id desc
      limit ${limit}
    ) newest order by seq::bigint, change_id`.compile(db);
  for await (const chunk of db.getExecutor().stream(query, 1000)) {
    for (const r of chunk.rows) {
      yield {
        seq: Number(r.seq), committed_at: r.committed_at, tenant: r.tenant, table: r.table, op: r.op,
        pk: r.pk, row: r.row, old: r.old, db_user: r.db_user, application_name: r.application_name, actor: r.actor, origin: r.origin,
      };
    }
  }
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

/** A fixed-width table for people: one line per change. */
export function formatAuditLine(e: AuditEntry): string {
  const changed = e.op === 'update' && e.old && typeof e.old === 'object' ? Object.keys(e.old).join(',') : '';
  return [
    String(e.seq).padStart(8), e.committed_at.padEnd(27), (e.tenant ?? '-').padEnd(12), e.table.padEnd(24), e.op.padEnd(8),
    JSON.stringify(e.pk ?? null).padEnd(20), (changed || '-').padEnd(16), e.db_user.padEnd(12), (e.actor ?? '-').padEnd(12), e.origin ?? '-',
  ].join(' ');
}

export const auditHeader = [
  'seq'.padStart(8), 'committed_at'.padEnd(27), 'tenant'.padEnd(12), 'table'.padEnd(24), 'op'.padEnd(8),
  'pk'.padEnd(20), 'changed'.padEnd(16), 'db_user'.padEnd(12), 'actor'.padEnd(12), 'origin',
].join(' ');
