// SQLSTATE codes pgrelay's SQL raises (see migrations/, list at the top of 1796400000001_log-and-capture.sql), named for code that catches them.
export const SqlState = {
  /** relay.watch: no key to identify rows by (no primary key, no usable unique index, or the named key columns have none). */
  NoPrimaryKey: 'PR001',
  /** relay.watch: the tenant column does not exist. */
  UnknownTenantColumn: 'PR002',
  /** relay.watch: an excluded column does not exist. */
  UnknownExcludedColumn: 'PR003',
  /** relay.watch: a primary-key or tenant column cannot be excluded. */
  ExcludedKeyColumn: 'PR004',
  /** relay.watch: pgrelay's own tables cannot be watched. */
  RelayTable: 'PR005',
  /** relay.watch: not a plain or partitioned table. */
  NotATable: 'PR007',
  /** relay.snapshot: a filter that cannot be applied. */
  BadFilter: 'PR008',
  /** relay.unwatch / relay.snapshot: the table is not watched. */
  NotWatched: 'PR009',
  /** relay.watch: a schema or table name with a dot (ambiguous as schema.table on the wire). */
  DottedName: 'PR010',
  /** relay.snapshot: a TRUNCATE committed after the last tick; the rows before it cannot be read back, try again. */
  SnapshotRetry: 'PR011',
  /** relay.tick outside a REPEATABLE READ transaction. */
  TickIsolation: 'PR012',
  /** relay.allow: a rule naming a column that is not streamed, an unknown operator, or a value its column cannot hold. */
  BadRule: 'PR013',
  /** Postgres: undefined_table (e.g. `relay.watch('nope', ...)`). */
  UndefinedTable: '42P01',
  /** Postgres: insufficient_privilege (a role that may not read relay, or may not migrate it). */
  InsufficientPrivilege: '42501',
} as const;

/**
 * A database error that says nothing about the request, only that the database was unreachable for a moment: a lost or
 * refused connection, a server shutting down or starting up, no free connection slot. Retrying the same work later is right.
 */
export function isTransientDbError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  // class 08 connection exceptions; 57P01–57P03 admin/crash shutdown, cannot connect now; 53300 too many connections
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return true;
  // node errors of the socket (no SQLSTATE) and pg's own words for a connection that went away
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTCONN'].includes(code)) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|connection error and is not queryable|timeout exceeded when trying to connect|Client was closed and is not queryable/i.test(message);
}
