// Kysely types of the `relay` schema, as migrations/*relay-capture.sql creates it.
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
  running_xmin: Xid8;
}

export interface RelayChanges {
  txid: Xid8;
  id: number;
  tenant: string | null;
  schema_name: string;
  table_name: string;
  op: 'insert' | 'update' | 'delete' | 'truncate';
  pk: unknown;
  row: unknown;
  old: unknown;
}

export interface RelayWatches {
  relid: number;
  tenant_attnum: number | null;
  exclude_attnums: number[];
  watched_at: Generated<Date>;
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
  primary_key: string[];
  exclude_columns: string[];
  numeric_columns: string[];
  columns: WatchedColumn[];
  watched_at: Date;
  capturing: boolean;
}

export interface RelayAudit {
  seq: Int8;
  committed_at: Date;
  db_user: string;
  application_name: string | null;
  client_addr: string | null;
  actor: string | null;
  origin: string | null;
  tenant: string | null;
  table: string;
  op: RelayChanges['op'];
  pk: unknown;
  row: unknown;
  old: unknown;
  change_id: number;
  txid: Xid8;
}

/** The database as Kysely sees it (only the relay schema). */
export interface RelayDatabase {
  'relay.transactions': RelayTransactions;
  'relay.changes': RelayChanges;
  'relay.watches': RelayWatches;
  'relay.state': RelayState;
  'relay.watched': RelayWatched;
  'relay.audit': RelayAudit;
}
