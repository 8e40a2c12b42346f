// Watching tables from TypeScript: relay.watch / relay.unwatch / relay.watched.
import { sql } from 'kysely';
import type { RelayDb } from './kysely.js';
import type { RelayWatched } from './schema.js';

/** A `schema.table` or bare name → the regclass text Postgres expects, quoting each part exactly as given. */
export function regclassOf(table: string): string {
  const dot = table.indexOf('.');
  const [schema, name] = dot === -1 ? ['public', table] : [table.slice(0, dot), table.slice(dot + 1)];
  const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;
  return `${quote(schema)}.${quote(name)}`;
}

/**
 * relay.watch: `key` names the columns rows are keyed by (those of a unique index on NOT NULL columns); without it,
 * the primary key, else the REPLICA IDENTITY index, else the table's only such index.
 */
export async function watch(db: RelayDb, table: string, tenantColumn: string | null, exclude: readonly string[] = [], key?: readonly string[]): Promise<void> {
  await sql`select relay.watch(${regclassOf(table)}::regclass, ${tenantColumn}::name, ${[...exclude]}::name[], ${key ? [...key] : null}::name[])`.execute(db);
}

export async function unwatch(db: RelayDb, table: string): Promise<void> {
  await sql`select relay.unwatch(${regclassOf(table)}::regclass)`.execute(db);
}

export async function listWatched(db: RelayDb): Promise<RelayWatched[]> {
  return db.selectFrom('relay.watched').selectAll().orderBy('table').execute();
}

/** The ordinary tables (and partitioned ones) a user could watch: every schema but Postgres's own and pgrelay's, in name order. */
export async function listTables(db: RelayDb): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select n.nspname || '.' || c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p') and not c.relispartition
      and n.nspname not in ('pg_catalog', 'information_schema', 'relay') and n.nspname !~ '^pg_'
    order by 1`.execute(db);
  return rows.map((r) => r.name);
}

/** The columns of `table` (a `schema.table` or bare name), in table order; empty when there is no such table. */
export async function tableColumns(db: RelayDb, table: string): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select a.attname::text as name from pg_attribute a
    where a.attrelid = to_regclass(${regclassOf(table)}) and a.attnum > 0 and not a.attisdropped order by a.attnum`.execute(db);
  return rows.map((r) => r.name);
}
