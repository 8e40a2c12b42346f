// Kysely types of the `relay` schema, as migrations/ create it.
import type { ColumnType, Generated } from 'kysely';

/** `xid8` values come back from node-postgres as strings. */
export type Xid8 = string;
/** `int8` values come back as strings; we read seq with ::int8 and parse it where it is safe (seq < 2^53). */
export type Int8 = ColumnType<string, string | number | bigint, string | number | bigint>;

export interface RelayTransactions {
  seq: Int8;
  txid: Xid8;
  committed_at: Date;
  db_user: string;
  application_name: string | null;
  client_addr: string | null;
  actor: string | null;
  origin: string | null;
  change_count: number;
}

/** The raw log the capture trigger appends to (values as the writer's to_jsonb rendered them). */
export interface RelayLog {
  id: Int8;
  txid: Xid8;
  relid: number;
  op: 'insert' | 'update' | 'delete' | 'truncate';
  row: unknown;
  old_row: unknown;
  db_user: string | null;
  application_name: string | null;
  client_addr: string | null;
  actor: string | null;
  origin: string | null;
}

/** The log as readers see it (a view that renders relay.log). */
export interface RelayChanges {
  id: Int8;
  txid: Xid8;
  tenant: string | null;
  schema_name: string;
  table_name: string;
  op: 'insert' | 'update' | 'delete' | 'truncate';
  pk: unknown;
  row: unknown;
  old: unknown;
  old_tenant: string | null;
  relid: number;
}

export interface RelayWatches {
  relid: number;
  schema_name: string;
  table_name: string;
  tenant_attnum: number | null;
  key_attnums: number[];
  exclude_attnums: number[];
  tenant_column: string | null;
  key_columns: string[];
  exclude_columns: string[];
  numeric_columns: string[];
  tstz_columns: string[];
  interval_columns: string[];
  key_source: string;
  watched_at: Generated<Date>;
  active: boolean;
}

export interface RelayTicker {
  singleton: Generated<boolean>;
  last_seq: Int8;
  snap: string;
  ticked_at: Date | null;
}

export interface RelayTenantSeqs {
  tenant: string | null;
  seq: Int8;
}

export interface RelayState {
  singleton: Generated<boolean>;
  pruned_through: Int8;
}

/** One streamed column of a watched table: `base` is the type under any domain. */
export interface WatchedColumn {
  name: string;
  type: string;
  base: string;
}

export interface RelayWatched {
  schema_name: string;
  table_name: string;
  table: string;
  tenant_column: string | null;
  /** The columns rows are keyed by (primary key, replica identity or unique index: see key_source). */
  primary_key: string[];
  key_source: string;
  exclude_columns: string[];
  numeric_columns: string[];
  columns: WatchedColumn[];
  watched_at: Date;
  capturing: boolean;
  /** The table's oid: the relay names it to relay.snapshot by oid, which needs no USAGE on its schema. */
  relid: number;
  /** Access rules per role (relay.allow), by role; empty: every token of a tenant sees the whole tenant. */
  rules: WatchedRule[];
}

/** One role's rule on a watched table: its row condition (values may be `{"claim": name}`) and visible columns (null: all). */
export interface WatchedRule {
  role: string;
  rows: Record<string, Record<string, unknown>> | null;
  columns: string[] | null;
}

/** relay.audit joins each transaction (who, why, when) to its changes as relay.changes renders them. */
export interface RelayAudit
  extends Pick<RelayTransactions, 'seq' | 'txid' | 'committed_at' | 'db_user' | 'application_name' | 'client_addr' | 'actor' | 'origin'>,
    Pick<RelayChanges, 'tenant' | 'op' | 'pk' | 'row' | 'old' | 'old_tenant'> {
  /** `schema.table` */
  table: string;
  /** relay.changes' id */
  change_id: Int8;
}

/** The database as Kysely sees it (only the relay schema). */
export interface RelayDatabase {
  'relay.transactions': RelayTransactions;
  'relay.log': RelayLog;
  'relay.changes': RelayChanges;
  'relay.ticker': RelayTicker;
  'relay.tenant_seqs': RelayTenantSeqs;
  'relay.watches': RelayWatches;
  'relay.state': RelayState;
  'relay.watched': RelayWatched;
  'relay.audit': RelayAudit;
}
