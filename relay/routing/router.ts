// Routes each transaction to the server's topics by (table, tenant, filter, subscription id): filtered once per distinct filter, serialized once per frame.
import type { CompiledFilter } from './filter.js';
import { txFrames } from './frames.js';
import type { Metrics } from '../ops/metrics.js';
import type { RelayChange, RelayTx } from '../feed/relay-tx.js';
import { wireChangeJson } from '../feed/relay-tx.js';
import type { RelayServer } from '../server/server.js';
import type { WatchedTables } from '../feed/watched-tables.js';

/** The tenant of sockets that see every tenant: null, which no tenant id (always a string) can be. */
export const ALL_TENANTS = null;

interface Group {
  filter: CompiledFilter | null;
  /** Subscription id → number of sockets subscribed with it. */
  ids: Map<string, number>;
}

/** What one subscription receives: a table, seen as one tenant (or all), through an optional filter. */
export interface Route {
  table: string;
  /** A tenant id, or ALL_TENANTS. */
  tenantKey: string | null;
  filter: CompiledFilter | null;
  id: string;
}

/** One topic per (table, tenant, filter, id); JSON keeps the parts apart whatever characters they hold. */
/** The tenant an UPDATE moved its row away from, if it did. */
function movedFrom(c: RelayChange): string | undefined {
  return c.op === 'update' && c.oldTenant != null && c.oldTenant !== c.tenant ? c.oldTenant : undefined;
}

export function topicOf(route: Route): string {
  return JSON.stringify([route.table, route.tenantKey, route.filter ? viewKey(route.filter) : null, route.id]);
}

/** Groups subscriptions that receive the same frames: the same filter and, under an access rule, the same visible columns. */
function viewKey(filter: CompiledFilter | null): string {
  if (!filter) return '';
  return filter.columns ? `${filter.key}\u0000${filter.columns.join('\u0000')}` : filter.key;
}

/** `row` with only the columns `cols` (all of them when `cols` is undefined). */
function pick<T extends Record<string, unknown> | null>(row: T, cols: readonly string[] | undefined): T {
  if (!cols || row === null) return row;
  const out: Record<string, unknown> = {};
  for (const k of cols) if (Object.hasOwn(row, k)) out[k] = row[k];
  return out as T;
}

export class Router {
  /** table → tenant key → filter key → group */
  readonly #routes = new Map<string, Map<string | null, Map<string, Group>>>();
  readonly #server: Pick<RelayServer, 'publish' | 'subscribers'>;
  readonly #maxFrame: number;
  readonly #metrics: Metrics;
  readonly #tables: WatchedTables;

  constructor(server: Pick<RelayServer, 'publish' | 'subscribers'>, tables: WatchedTables, maxFrame: number, metrics: Metrics) {
    this.#server = server;
    this.#tables = tables;
    this.#maxFrame = maxFrame;
    this.#metrics = metrics;
  }

  /** Registers one socket's subscription; returns its topic. */
  add(route: Route): string {
    let tenants = this.#routes.get(route.table);
    if (!tenants) this.#routes.set(route.table, (tenants = new Map()));
    let groups = tenants.get(route.tenantKey);
    if (!groups) tenants.set(route.tenantKey, (groups = new Map()));
    const fkey = viewKey(route.filter);
    let group = groups.get(fkey);
    if (!group) groups.set(fkey, (group = { filter: route.filter, ids: new Map() }));
    group.ids.set(route.id, (group.ids.get(route.id) ?? 0) + 1);
    this.#metrics.subscriptions.inc({ table: route.table });
    return topicOf(route);
  }

  remove(route: Route): void {
    const tenants = this.#routes.get(route.table);
    const groups = tenants?.get(route.tenantKey);
    const fkey = viewKey(route.filter);
    const group = groups?.get(fkey);
    const n = group?.ids.get(route.id);
    if (!tenants || !groups || !group || n === undefined) return;
    this.#metrics.subscriptions.dec({ table: route.table });
    if (n > 1) return void group.ids.set(route.id, n - 1);
    group.ids.delete(route.id);
    if (group.ids.size > 0) return;
    groups.delete(fkey);
    if (groups.size > 0) return;
    tenants.delete(route.tenantKey);
    if (tenants.size === 0) this.#routes.delete(route.table);
  }

  /** Publishes one committed transaction to every topic that should see some of it. */
  publish(tx: RelayTx): void {
    this.#metrics.lag.observe(Math.max(0, Date.now() - Date.parse(tx.at)) / 1000);
    // table → (every change, for all-tenant sockets; each tenant's view of the changes; whether it was truncated)
    const byTable = new Map<string, { all: RelayChange[]; byTenant: Map<string, RelayChange[]>; truncates: RelayChange[] }>();
    for (const c of tx.changes) {
      if (!this.#routes.has(c.table)) continue;
      let t = byTable.get(c.table);
      if (!t) byTable.set(c.table, (t = { all: [], byTenant: new Map(), truncates: [] }));
      t.all.push(c);
      if (c.op === 'truncate') {
        t.truncates.push(c);
        for (const list of t.byTenant.values()) list.push(c);
        continue;
      }
      for (const tenant of [c.tenant, movedFrom(c)]) {
        if (tenant === null || tenant === undefined) continue;
        let list = t.byTenant.get(tenant);
        if (!list) t.byTenant.set(tenant, (list = [...t.truncates]));
        list.push(this.#view(c, tenant)!);
      }
    }
    for (const [table, t] of byTable) {
      const tenants = this.#routes.get(table)!;
      const all = tenants.get(ALL_TENANTS);
      if (all) this.#publishGroups(tx, table, ALL_TENANTS, all, t.all);
      if (t.truncates.length > 0) {
        // a truncate reaches every tenant subscribed to the table, with that tenant's own changes around it
        for (const [tenantKey, groups] of tenants) {
          if (tenantKey !== ALL_TENANTS) this.#publishGroups(tx, table, tenantKey, groups, t.byTenant.get(tenantKey) ?? t.truncates);
        }
      } else {
        for (const [tenant, changes] of t.byTenant) {
          const groups = tenants.get(tenant);
          if (groups) this.#publishGroups(tx, table, tenant, groups, changes);
        }
      }
    }
  }

  /**
   * How `tenant` sees change `c`: as is, not at all, or, for an UPDATE that moved the row between tenants,
   * as an insert (the tenant it joined, without the old values) or a delete of the old row (the tenant it left).
   */
  #view(c: RelayChange, tenant: string | null): RelayChange | undefined {
    if (tenant === ALL_TENANTS || c.op === 'truncate') return c;
    const from = movedFrom(c);
    if (c.tenant === tenant) {
      if (!from) return c;
      return this.#cached(c, 'in', () => ({ ...c, op: 'insert', old: null, json: wireChangeJson({ table: c.table, op: 'insert', pk: c.pk, row: c.row, old: null }) }));
    }
    if (from === tenant) {
      return this.#cached(c, 'out', () => {
        const before = { ...c.row, ...(c.old ?? {}) };
        const pk = this.#pkOf(c.table, before) ?? c.pk;
        return { ...c, op: 'delete', tenant, pk, row: before, old: null, json: wireChangeJson({ table: c.table, op: 'delete', pk, row: before, old: null }) };
      });
    }
    return undefined;
  }

  readonly #views = new WeakMap<RelayChange, { in?: RelayChange; out?: RelayChange }>();

  #cached(c: RelayChange, side: 'in' | 'out', make: () => RelayChange): RelayChange {
    let v = this.#views.get(c);
    if (!v) this.#views.set(c, (v = {}));
    return (v[side] ??= make());
  }

  #publishGroups(tx: RelayTx, table: string, tenantKey: string | null, groups: Map<string, Group>, changes: readonly RelayChange[]): void {
    for (const group of groups.values()) {
      const jsons = this.select(table, changes, group.filter);
      if (jsons.length === 0) continue;
      for (const id of group.ids.keys()) {
        const topic = topicOf({ table, tenantKey, filter: group.filter, id });
        for (const frame of txFrames(id, tx, jsons, this.#maxFrame)) {
          this.#server.publish(topic, frame);
          this.#metrics.frames.inc();
          this.#metrics.deliveries.inc(this.#server.subscribers(topic));
        }
      }
    }
  }

  /**
   * The changes a subscription receives, as wire JSON. Through a filter, DELETEs test the old row and an
   * UPDATE that moves a row into the filter arrives as an insert, one that moves it out as a delete. Under an access
   * rule's columns, rows and old values carry only those columns, and an UPDATE of none of them is not sent.
   */
  select(table: string, changes: readonly RelayChange[], filter: CompiledFilter | null): string[] {
    if (!filter) return changes.map((c) => c.json);
    const cols = filter.columns;
    const out: string[] = [];
    for (const c of changes) {
      if (c.op === 'truncate') out.push(c.json);
      else if (c.op !== 'update') {
        if (c.row && filter.test(c.row)) out.push(cols ? this.#masked(c, cols)! : c.json);
      } else if (c.row) {
        const before = { ...c.row, ...(c.old ?? {}) };
        const now = filter.test(c.row);
        const was = filter.test(before);
        if (now && was) {
          const json = cols ? this.#masked(c, cols) : c.json;
          if (json !== null) out.push(json);
        } else if (now) out.push(wireChangeJson({ table, op: 'insert', pk: c.pk, row: pick(c.row, cols), old: null }));
        else if (was) out.push(wireChangeJson({ table, op: 'delete', pk: this.#pkOf(table, before) ?? c.pk, row: pick(before, cols), old: null }));
      }
    }
    return out;
  }

  /** Serializations of changes under column masks, once per (change, visible columns). */
  readonly #masks = new WeakMap<RelayChange, Map<string, string | null>>();

  /** `c` with only `cols` in its row and old values; null for an UPDATE that changed none of them. */
  #masked(c: RelayChange, cols: readonly string[]): string | null {
    let byCols = this.#masks.get(c);
    if (!byCols) this.#masks.set(c, (byCols = new Map()));
    const k = cols.join('\u0000');
    let json = byCols.get(k);
    if (json === undefined) {
      const old = c.old ? pick(c.old, cols) : null;
      json = c.op === 'update' && (!old || Object.keys(old).length === 0) ? null : wireChangeJson({ table: c.table, op: c.op, pk: c.pk, row: pick(c.row, cols), old });
      byCols.set(k, json);
    }
    return json;
  }

  /** The changes of `tx` that `route` receives (for catch-up from the ring or the log). */
  changesFor(tx: RelayTx, route: Pick<Route, 'table' | 'tenantKey' | 'filter'>): string[] {
    const mine: RelayChange[] = [];
    for (const c of tx.changes) {
      const v = c.table === route.table ? this.#view(c, route.tenantKey) : undefined;
      if (v) mine.push(v);
    }
    return mine.length === 0 ? [] : this.select(route.table, mine, route.filter);
  }

  framesFor(tx: RelayTx, route: Route): string[] {
    const jsons = this.changesFor(tx, route);
    return jsons.length === 0 ? [] : txFrames(route.id, tx, jsons, this.#maxFrame);
  }

  #pkOf(table: string, row: Record<string, unknown>): Record<string, unknown> | undefined {
    const pk = this.#tables.get(table)?.primaryKey;
    return pk ? Object.fromEntries(pk.map((k) => [k, row[k]])) : undefined;
  }
}
