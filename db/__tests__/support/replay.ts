// Replays relay.changes onto rows, the way a subscriber applies the stream, to check the log against the tables.
import type pg from 'pg';

export type JsonRow = Record<string, unknown>;

/** Applies changes (in (seq, id) order) to a map keyed by the JSON of the primary key. */
export function applyChange(rows: Map<string, JsonRow>, change: { op: string; pk: JsonRow | null; row: JsonRow | null; old: JsonRow | null }, pkColumns: string[]): void {
  const key = (r: JsonRow) => JSON.stringify(pkColumns.map((c) => r[c]));
  switch (change.op) {
    case 'insert':
      rows.set(key(change.row!), change.row!);
      break;
    case 'update': {
      // `old` holds the previous values of changed columns: the previous key may differ when the key changed.
      const before = { ...change.row!, ...(change.old ?? {}) };
      rows.delete(key(before));
      rows.set(key(change.row!), change.row!);
      break;
    }
    case 'delete':
      rows.delete(key(change.row!));
      break;
    case 'truncate':
      rows.clear();
      break;
    default:
      throw new Error(`unknown op ${change.op}`);
  }
}

/** The table's rows in the log's JSON form, keyed like {@link applyChange}. */
export async function currentRows(client: pg.ClientBase, table: string, pkColumns: string[]): Promise<Map<string, JsonRow>> {
  const { rows } = await client.query<{ row: JsonRow }>(`select row from relay.snapshot($1::regclass, null)`, [table]);
  return new Map(rows.map((r) => [JSON.stringify(pkColumns.map((c) => r.row[c])), r.row]));
}

/** Replays every logged change of `table` after `afterSeq` onto `start`. */
export async function replayLog(client: pg.ClientBase, table: string, pkColumns: string[], start = new Map<string, JsonRow>(), afterSeq = 0): Promise<Map<string, JsonRow>> {
  const [schema, name] = table.split('.');
  const { rows } = await client.query<{ op: string; pk: JsonRow; row: JsonRow; old: JsonRow }>(
    `select c.op, c.pk, c.row, c.old from relay.changes c join relay.transactions t on t.txid = c.txid
     where c.schema_name = $1 and c.table_name = $2 and t.seq > $3 order by t.seq, c.id`,
    [schema, name, afterSeq],
  );
  for (const change of rows) applyChange(start, change, pkColumns);
  return start;
}

/** Sorted entries, for readable deep-equality failures. */
export function sorted(rows: Map<string, JsonRow>): Array<[string, JsonRow]> {
  return [...rows.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
