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
  /** Postgres: undefined_table (e.g. `relay.watch('nope', ...)`). */
  UndefinedTable: '42P01',
  /** Postgres: insufficient_privilege (a role that may not read relay, or may not migrate it). */
  InsufficientPrivilege: '42501',
} as const;
