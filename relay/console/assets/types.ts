// The shapes the console exchanges with the relay: its HTTP API's answers and the frames it sends (the relay's are client/shared/protocol.ts's).
// Only types come from outside this folder: a value imported from there would be a module the relay does not serve.
import type { Json, SubscribeMessage, UnsubscribeMessage } from '../../../client/shared/protocol.js';
import type { RelayStats } from '../http-routes.js';

/** A column of a watched table: its name and declared type. */
export interface ColumnInfo {
  name: string;
  type: string;
}

/** A watched table this token may see, as `GET /api/tables` lists it. */
export interface TableInfo {
  name: string;
  tenantColumn: string | null;
  primaryKey: string[];
  columns: ColumnInfo[];
}

/** `GET /api/tables`. */
export interface TablesAnswer {
  tenant: string | null;
  allTenants: boolean;
  /** Tables watched in all, whether or not this token may see them. */
  watched: number;
  /** The command that watches a table, for a fresh install. */
  watchCommand: string;
  tables: TableInfo[];
}

/** `GET /api/dev`: development mode, from this machine only. */
export type DevAnswer = { dev: false } | { dev: true; tenants: string[]; watchCommand: string };

/** `GET /api/stats` (all-tenant tokens): connections and subscriptions per tenant and table, as the relay answers it. */
export type StatsAnswer = RelayStats;

/** Column → comparison → value, as typed in the filter builder: the relay checks it (`bad_filter`). */
export type TypedFilter = Record<string, Record<string, Json>>;

/** The console's `subscribe`: its filter is what was typed, not yet checked. */
export interface ConsoleSubscribe extends Omit<SubscribeMessage, 'filter'> {
  filter?: TypedFilter;
}

/** A frame the console sends. */
export type OutgoingMessage = ConsoleSubscribe | UnsubscribeMessage;
