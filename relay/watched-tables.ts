// The watched tables the relay knows, with their column types, reloaded when relay.watch/unwatch notify.
import { listWatched } from '../db/watch.js';
import type { RelayDb } from '../db/kysely.js';
import type { WatchedRule } from '../db/schema.js';

/** One watched table as subscriptions and filters need it. */
export interface WatchedTable {
  /** `schema.table`. */
  readonly name: string;
  /** The table's oid (relay.snapshot takes it: a name would need USAGE on the schema). */
  readonly relid: number;
  /** Null when the table has no tenants (only all-tenant tokens see it). */
  readonly tenantColumn: string | null;
  readonly primaryKey: readonly string[];
  /** Streamed column → base type name (`integer`, `numeric`, `text`, `timestamp with time zone`…), in table column order. */
  readonly columns: ReadonlyMap<string, string>;
  /** Streamed column → its declared type (`numeric(10,2)`, a domain's name…), for people reading the console. */
  readonly declaredTypes: ReadonlyMap<string, string>;
  /** Columns excluded from capture: they never leave the database. */
  readonly excluded: readonly string[];
  /** Access rules by role (relay.allow); empty: no rule, every token sees its whole tenant. */
  readonly rules: ReadonlyMap<string, WatchedRule>;
}

export class WatchedTables {
  #tables = new Map<string, WatchedTable>();
  #loading: Promise<void> | undefined;
  readonly #db: RelayDb;

  constructor(db: RelayDb) {
    this.#db = db;
  }

  get(name: string): WatchedTable | undefined {
    return this.#tables.get(name);
  }

  names(): string[] {
    return [...this.#tables.keys()];
  }

  /** Drops a table that relay.unwatch just removed, before the reload that follows confirms it. */
  forget(name: string): void {
    this.#tables.delete(name);
  }

  /** Reloads from relay.watched; concurrent calls share one query. */
  reload(): Promise<void> {
    this.#loading ??= listWatched(this.#db)
      .then((rows) => {
        this.#tables = new Map(rows.map((r) => [r.table, {
          name: r.table,
          relid: r.relid,
          tenantColumn: r.tenant_column,
          primaryKey: r.primary_key,
          columns: new Map(r.columns.map((c) => [c.name, c.base])),
          declaredTypes: new Map(r.columns.map((c) => [c.name, c.type])),
          excluded: r.exclude_columns,
          rules: new Map((r.rules ?? []).map((rule) => [rule.role, rule])),
        }]));
      })
      .finally(() => {
        this.#loading = undefined;
      });
    return this.#loading;
  }
}
