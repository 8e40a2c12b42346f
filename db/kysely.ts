// A Kysely instance over a pg Pool, able to stream with server-side cursors.
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import Cursor from 'pg-cursor';
import type { RelayDatabase } from './schema.js';

export type RelayDb = Kysely<RelayDatabase>;

/** Options of {@link createPool}. */
export interface PoolOptions {
  /** Connections. Default 10. */
  max?: number;
  /** `application_name` shown in pg_stat_activity. Default `pgrelay`. */
  applicationName?: string;
}

/** Settings of every session pgrelay reads the log with (see migrations/*_render.sql). */
export const SESSION_OPTIONS = '-c TimeZone=UTC -c IntervalStyle=postgres';

export function createPool(url: string, options: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'pgrelay',
    // relay.changes renders timestamptz and interval values in the session's settings: the wire wants UTC and ISO-like
    options: SESSION_OPTIONS,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
  });
  // A pooled client dying while idle (server restart) must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  // Nor while checked out: pg-pool listens for errors only on idle clients, and a client whose server went away emits
  // 'error' besides failing its query (which is how the caller learns of it). Seen in the long chaos run: a relay died
  // of an unhandled 'error' when Postgres restarted under a read.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

export function createKysely(pool: pg.Pool): RelayDb {
  return new Kysely<RelayDatabase>({ dialect: new PostgresDialect({ pool, cursor: Cursor }) });
}
