// The watched tables the relay knows, with their column types, reloaded when relay.watch/unwatch notify.
import { listWatched } from '../../db/watch.js';
import type { RelayDb } from '../../db/kysely.js';
import type { RelayWatched, WatchedRule } from '../../db/schema.js';

/** The table of a `{"v":1,"unwatch":"schema.table"}` relay_config payload (relay.unwatch sends it), if that is what it is. */
export function unwatchedTable(payload: string): string | undefined {
  try {
    const p = JSON.parse(payload) as { v?: unknown; unwatch?: unknown };
    return p.v === 1 && typeof p.unwatch === 'string' ? p.unwatch : undefined;
  } catch {
    return undefined;
  }
}

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
  #again: Promise<void> | undefined;
  readonly #list: () => Promise<RelayWatched[]>;

  /** `list` reads relay.watched (a test gives its own, to hold a read open). */
  constructor(db: RelayDb, list: () => Promise<RelayWatched[]> = () => listWatched(db)) {
    this.#list = list;
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

  /**
   * Reloads from relay.watched. A call while a read is running queues one more read after it (calls meanwhile share
   * that one): the running read may have started before the change that caused the call committed, and sharing it
   * kept the old rules until the next change (seen as a rule change the relay never applied).
   */
  reload(): Promise<void> {
    if (this.#loading === undefined) {
      this.#loading = this.#read().finally(() => {
        this.#loading = undefined;
      });
      return this.#loading;
    }
    this.#again ??= this.#loading.catch(() => undefined).then(() => {
      this.#again = undefined;
      return this.reload();
    });
    return this.#again;
  }

  async #read(): Promise<void> {
    const rows = await this.#list();
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
  }
}
