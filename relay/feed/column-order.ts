// Rows on the wire in table column order, serialized one way: snapshot rows (jsonb text from Postgres) and tx rows (parsed from
// NOTIFY payloads, whose jsonb keys come shortest first) both leave the relay as compact JSON with the table's column order.
import { wireChangeJson, type RelayChange, type RelayTx } from './relay-tx.js';
import type { WatchedTable, WatchedTables } from './watched-tables.js';

type Obj = Record<string, unknown>;

/** `row` with its keys in `order` first (those it has), then any others (a column added since the last reload) as they were. */
export function orderKeys<T extends Obj | null | undefined>(row: T, order: Iterable<string>): T {
  if (row === null || row === undefined || typeof row !== 'object') return row;
  const out: Obj = {};
  for (const k of order) if (Object.hasOwn(row, k)) out[k] = row[k];
  for (const k of Object.keys(row)) if (!Object.hasOwn(out, k)) out[k] = row[k];
  return out as T;
}

/** A snapshot row (jsonb text) as compact JSON in column order, like the rows of tx frames; only `visible` columns when given (an access rule's). */
export function snapshotRowJson(text: string, table: WatchedTable | undefined, visible?: readonly string[]): string {
  const row = JSON.parse(text) as Obj;
  if (visible) {
    const out: Obj = {};
    for (const k of visible) if (Object.hasOwn(row, k)) out[k] = row[k];
    return JSON.stringify(out);
  }
  return JSON.stringify(table ? orderKeys(row, table.columns.keys()) : row);
}

/** The same transaction with every row, old values and primary key in column order, and the wire JSON to match. */
export function orderTx(tx: RelayTx, tables: WatchedTables): RelayTx {
  const changes = tx.changes.map((c): RelayChange => {
    const table = tables.get(c.table);
    if (!table || c.op === 'truncate') return c;
    const ordered = { ...c, row: orderKeys(c.row, table.columns.keys()), old: orderKeys(c.old, table.columns.keys()), pk: orderKeys(c.pk, table.primaryKey) };
    return { ...ordered, json: wireChangeJson(ordered) };
  });
  return { ...tx, changes };
}
