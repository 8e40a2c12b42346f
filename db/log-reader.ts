// Reads committed transactions back from the change log, in (seq, change id) order.
import { sql, type CompiledQuery } from 'kysely';
import type { RelayDb } from './kysely.js';

/** One changed row as the log holds it. */
export interface LoggedChange {
  /** The change's place in the log: orders the changes of a transaction (ids are global, not dense). */
  id: number;
  /** Tenant of the row; null for tables without tenants and for truncates. */
  tenant: string | null;
  /** `schema.table`. */
  table: string;
  op: 'insert' | 'update' | 'delete' | 'truncate';
  pk: Record<string, unknown> | null;
  row: Record<string, unknown> | null;
  old: Record<string, unknown> | null;
  /** An UPDATE that moved the row to another tenant: the tenant it left. */
  oldTenant?: string | null;
}

/** One committed transaction (or, from a filtered read, the part of it that matched). */
export interface LoggedTransaction {
  seq: number;
  /** Commit time, ISO 8601 in UTC as Postgres' to_json renders it (`2026-11-22T01:02:03.456789+00:00`). */
  at: string;
  origin: string | null;
  changes: LoggedChange[];
}

interface Row {
  seq: string;
  at: string;
  origin: string | null;
  /** int8, as text */
  id: string;
  tenant: string | null;
  tbl: string;
  op: LoggedChange['op'];
  pk: LoggedChange['pk'];
  row: LoggedChange['row'];
  old: LoggedChange['old'];
  old_tenant: string | null;
}

/** Groups consecutive rows of one seq into transactions, yielding each when the next one starts. */
async function* group(rows: AsyncIterable<Row>): AsyncGenerator<LoggedTransaction> {
  let current: LoggedTransaction | undefined;
  for await (const r of rows) {
    const seq = Number(r.seq);
    if (!current || current.seq !== seq) {
      if (current) yield current;
      current = { seq, at: r.at, origin: r.origin, changes: [] };
    }
    current.changes.push({ id: Number(r.id), tenant: r.tenant, table: r.tbl, op: r.op, pk: r.pk, row: r.row, old: r.old, oldTenant: r.old_tenant });
  }
  if (current) yield current;
}

// The same text the ticker puts in NOTIFY payloads (to_json of a timestamptz in UTC), whatever the session's TimeZone.
const at = sql<string>`(to_json(t.committed_at at time zone 'UTC') #>> '{}') || '+00:00'`;

/** A Row's columns, from a transaction `t` (of relay.transactions) and one of its changes `c` (of relay.changes). */
const rowColumns = sql`t.seq::text as seq, ${at} as at, t.origin, c.id, c.tenant, c.schema_name || '.' || c.table_name as tbl, c.op, c.pk, c.row, c.old, c.old_tenant`;

/**
 * Every transaction with `after < seq <= upTo` (all tenants, all tables), at most `limit` of them: the oldest ones, or
 * with `newestFirst` the newest ones, newest first. Used to close gaps and after the LISTEN session reconnects, and
 * (newest first) to fill the ring at start.
 */
export async function readTransactions(db: RelayDb, after: number, options: { upTo?: number; limit?: number; newestFirst?: boolean } = {}): Promise<LoggedTransaction[]> {
  const direction = options.newestFirst ? sql`desc` : sql`asc`;
  const { rows } = await sql<Row>`
    select ${rowColumns}
    from (select seq, txid, committed_at, origin from relay.transactions
          where seq > ${after} and seq <= ${options.upTo ?? Number.MAX_SAFE_INTEGER}
          order by seq ${direction} limit ${options.limit ?? 1000}) t
    -- lateral + offset 0: each transaction's changes by log_txid. A plain join let the planner hash-join the whole
    -- log (a seq scan of every row retained, 22 ms of 35 at 41,000 rows) for every page it read.
    cross join lateral (select * from relay.changes c where c.txid = t.txid offset 0) c
    order by t.seq ${direction}, c.id`.execute(db);
  const out: LoggedTransaction[] = [];
  for await (const tx of group(toAsync(rows))) out.push(tx);
  return out;
}

/** The transaction `seq`, or undefined when it does not exist (a seq taken by a transaction that failed to commit). */
export async function readTransaction(db: RelayDb, seq: number): Promise<LoggedTransaction | undefined> {
  const [tx] = await readTransactions(db, seq - 1, { upTo: seq, limit: 1 });
  return tx;
}

/** What one subscriber may see: one tenant (or every tenant) and some tables. */
export interface ChangeScope {
  /** A tenant id, or null for every tenant (an `all_tenants` token). */
  tenant: string | null;
  /** `schema.table` names. */
  tables: readonly string[];
}

/**
 * Streams the changes in `scope` of transactions with `after < seq <= upTo`, in (seq, id) order, through a
 * server-side cursor. For one tenant the work is proportional to that tenant's transactions: relay.tenant_seqs
 * (written by the ticker) lists them. Truncates (tenant null) belong to every tenant of their table; an update that
 * moved a row between tenants belongs to both.
 */
export function streamChanges(db: RelayDb, scope: ChangeScope, after: number, upTo: number, chunkSize = 500): AsyncGenerator<LoggedTransaction> {
  const tables = [...scope.tables];
  const changes = sql`
    select * from relay.changes c
    where c.txid = t.txid and c.schema_name || '.' || c.table_name = any (${tables}::text[])`;
  const query = scope.tenant === null
    ? sql<Row>`
        select ${rowColumns}
        from relay.transactions t
        cross join lateral (${changes} offset 0) c
        where t.seq > ${after} and t.seq <= ${upTo}
        order by t.seq, c.id`
    : sql<Row>`
        select ${rowColumns}
        from (select seq from relay.tenant_seqs where tenant = ${scope.tenant} and seq > ${after} and seq <= ${upTo}
              union
              select seq from relay.tenant_seqs where tenant is null and seq > ${after} and seq <= ${upTo}) s
        -- LATERAL … LIMIT 1 pins one primary-key probe per transaction of the tenant, whatever the estimates
        cross join lateral (select * from relay.transactions t where t.seq = s.seq limit 1) t
        cross join lateral (
          ${changes} and (c.tenant = ${scope.tenant} or c.old_tenant = ${scope.tenant} or (c.tenant is null and c.op = 'truncate'))
          offset 0
        ) c
        order by t.seq, c.id`;
  return group(streamRows(db, query.compile(db), chunkSize));
}

async function* streamRows(db: RelayDb, compiled: CompiledQuery<Row>, chunkSize: number): AsyncGenerator<Row> {
  for await (const chunk of db.getExecutor().stream(compiled, chunkSize)) {
    for (const r of chunk.rows) yield r;
  }
}

async function* toAsync<T>(items: T[]): AsyncGenerator<T> {
  for (const i of items) yield i;
}

/** The highest seq whose history was pruned: cursors below it cannot be served and must reset. */
export async function prunedThrough(db: RelayDb): Promise<number> {
  const { rows } = await sql<{ p: string }>`select pruned_through::text as p from relay.state`.execute(db);
  return Number(rows[0]?.p ?? 0);
}

/** The position visible now (see relay.position()). */
export async function currentPosition(db: RelayDb): Promise<number> {
  const { rows } = await sql<{ p: string }>`select relay.position()::text as p`.execute(db);
  return Number(rows[0]?.p ?? 0);
}
