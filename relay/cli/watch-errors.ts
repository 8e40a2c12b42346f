// What `pgrelay watch` and `unwatch` say when a name is wrong: the names that exist, rather than Postgres's bare "does not exist".
import { PgRelayError } from '../../client/shared/errors.js';
import type { RelayDb } from '../../db/kysely.js';
import { SqlState } from '../../db/sqlstate.js';
import { listTables, tableColumns } from '../../db/watch.js';

/** More than this many tables are not listed whole: the sentence names the first ones and how to see them all. */
const MAX_LISTED = 20;

const qualified = (table: string) => (table.includes('.') ? table : `public.${table}`);

/**
 * The error to show for `err`, thrown by relay.watch or relay.unwatch on `table`: a wrong table name lists the tables
 * there are, a wrong column name lists the table's columns (which option it came from is in `options`). Any other error
 * is returned as it is.
 */
export async function explainWatchError(db: RelayDb, table: string, err: unknown): Promise<unknown> {
  const e = err as { code?: string; message?: string };
  // 3F000: a schema that does not exist (`sales.orders` without a schema sales)
  if (e.code === SqlState.UndefinedTable || e.code === '3F000') {
    const tables = await listTables(db).catch(() => undefined);
    if (!tables) return err;
    const name = qualified(table);
    if (tables.length === 0) {
      return new PgRelayError('unknown_table', `There is no table ${name}, and this database has no table to watch yet: create it first, then run this again.`, { cause: err });
    }
    const shown = tables.length <= MAX_LISTED
      ? `this database has ${listed(tables)}`
      : `this database has ${tables.length} tables, among them ${listed(tables.slice(0, MAX_LISTED))} (psql's \\dt *.* lists them all)`;
    return new PgRelayError('unknown_table', `There is no table ${name}; ${shown}. Give one of those (a name without a schema means public.<name>).`, { cause: err });
  }
  const column = /column "((?:[^"]|"")*)" does not exist/.exec(e.message ?? '')?.[1];
  const option = e.code === SqlState.UnknownTenantColumn ? '--tenant-column' : e.code === SqlState.UnknownExcludedColumn ? '--exclude' : e.code === SqlState.NoPrimaryKey ? '--key' : undefined;
  if (column === undefined || option === undefined) return err;
  const columns = await tableColumns(db, table).catch(() => undefined);
  if (!columns?.length) return err;
  const advice = option === '--tenant-column'
    ? 'give the one that holds the tenant to --tenant-column, or --no-tenant for a table whose rows belong to no tenant'
    : `check ${option}`;
  return new PgRelayError('unknown_column', `Table ${qualified(table)} has no column "${column}"; its columns are ${columns.join(', ')}: ${advice}.`, { cause: err });
}

/** `a`, `a and b`, `a, b and c`. */
function listed(names: readonly string[]): string {
  return names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}
