// Applies or reverses pgrelay's SQL migrations (migrations/*.sql) with node-pg-migrate.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { PgRelayError } from '../client/shared/errors.js';
import { SqlState } from './sqlstate.js';

/** The `migrations/` folder, from the sources (db/) or from the build (dist/db/). */
export function migrationsDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const candidate of [path.join(here, '..', 'migrations'), path.join(here, '..', '..', 'migrations')]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new PgRelayError('migrations_missing', `The migrations folder is missing next to ${here}; reinstall pgrelay.`);
}

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** `up` applies every pending migration (default); `down` reverses them. */
  direction?: 'up' | 'down';
  /** How many migrations to apply or reverse. Default: all for `up`, all for `down`. */
  count?: number;
  /** Receives one line per migration applied. Default: silent. */
  log?: (line: string) => void;
}

/**
 * Brings the `relay` schema up to date. The history lives in `relay.migrations`; concurrent callers
 * (two relays starting together) wait on node-pg-migrate's advisory lock instead of failing.
 * Returns the names of the migrations run.
 */
export async function migrate(databaseUrl: string, options: MigrateOptions = {}): Promise<string[]> {
  const log = options.log ?? (() => undefined);
  await refuseFirstCapture(databaseUrl);
  const silent = { debug: () => undefined, info: () => undefined, warn: log, error: log };
  const ran = await runner({
    databaseUrl,
    dir: migrationsDir(),
    direction: options.direction ?? 'up',
    count: options.count ?? Infinity,
    migrationsTable: 'migrations',
    migrationsSchema: 'relay',
    createMigrationsSchema: true,
    checkOrder: true,
    singleTransaction: true,
    advisoryLockMode: 'wait',
    logger: silent,
  });
  for (const m of ran) log(`${options.direction === 'down' ? 'reversed' : 'applied'} migration ${m.name}`);
  return ran.map((m) => m.name);
}

/** The role connected, and the migrations in migrations/ that `relay.migrations` does not list yet (all of them without pgrelay). */
async function schemaState(databaseUrl: string): Promise<{ role: string; pending: string[] }> {
  const all = readdirSync(migrationsDir()).filter((f) => f.endsWith('.sql')).map((f) => f.slice(0, -'.sql'.length)).sort();
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const role = (await client.query<{ role: string }>('select current_user as role')).rows[0]!.role;
    try {
      const { rows } = await client.query<{ name: string }>('select name from relay.migrations');
      const applied = new Set(rows.map((r) => r.name));
      return { role, pending: all.filter((name) => !applied.has(name)) };
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === SqlState.UndefinedTable) return { role, pending: all };
      if (code === SqlState.InsufficientPrivilege) {
        throw new PgRelayError('no_relay_access', `Role ${role} cannot read schema relay: grant it relay_reader (grant relay_reader to ${role}), or use a login role made with create role … login password '…' in role relay_reader.`, { cause: err });
      }
      throw err;
    }
  } finally {
    await client.end();
  }
}

/**
 * What `pgrelay start` runs: nothing when the schema is current, so that the relay's own role (relay_reader, which may
 * not change the schema) can start; else the pending migrations, which need the owner. Returns the names of those run.
 */
export async function migrateIfBehind(databaseUrl: string): Promise<string[]> {
  const { role, pending } = await schemaState(databaseUrl);
  if (pending.length === 0) return [];
  try {
    return await migrate(databaseUrl);
  } catch (err) {
    if ((err as { code?: string }).code !== SqlState.InsufficientPrivilege) throw err;
    throw new PgRelayError('schema_behind', `The relay schema of this database lacks ${pending.length} migration(s) (from ${pending[0]}), and role ${role} may not apply them: run pgrelay migrate with the owner's DATABASE_URL, then start the relay again.`, { cause: err });
  }
}

/** The one migration of pgrelay 0.1, whose capture (a commit-time sequencer) the ticker replaced. */
const FIRST_CAPTURE = '1700000000001_relay-capture';

/**
 * pgrelay 0.1 numbered transactions at commit under a lock (every watched write waited for it); 0.2 appends and numbers
 * in a ticker, with another schema. There is no in-place upgrade of that pre-release: say so instead of failing halfway.
 */
async function refuseFirstCapture(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ old: boolean }>(
      `select to_regclass('relay.migrations') is not null and exists (select 1 from relay.migrations where name = $1) as old`, [FIRST_CAPTURE])
      .catch(() => ({ rows: [{ old: false }] }));
    if (rows[0]?.old) {
      throw new PgRelayError('old_schema', 'This database has the capture schema of pgrelay 0.1, which 0.2 replaced (writers no longer wait for a commit lock); there is no in-place upgrade of that pre-release: unwatch your tables, run `drop schema relay cascade` as its owner (the change history goes with it), then `pgrelay migrate` and watch them again.');
    }
  } finally {
    await client.end();
  }
}
