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

/**
 * pg-cursor, except that closing a cursor that already failed returns at once. pg-cursor's close() waits for the
 * server's ReadyForQuery; when the cursor failed because the connection died (a Postgres restart, a terminated
 * backend) none ever comes, and close() never settles. Kysely's stream awaits it in a `finally`, so a catch-up from
 * the log hung forever with its pooled connection, on a socket that stayed open (found by the chaos run). A failed
 * cursor needs no Close: its portal ended with the failed transaction, or with the connection. (brianc/node-postgres
 * #2642 and #2588, open.) Likewise a read on a connection whose socket is already gone fails at once instead of
 * waiting for rows that cannot come (#2468).
 */
export class SafeCursor<R = any> extends Cursor<R> {
  override read(maxRows: number): Promise<R[]>;
  override read(maxRows: number, callback: Cursor.ResultCallback<R>): undefined;
  override read(maxRows: number, callback?: Cursor.ResultCallback<R>): Promise<R[]> | undefined {
    const self = this as unknown as { state: string; connection?: { stream?: { destroyed?: boolean } } };
    if (self.connection?.stream?.destroyed && self.state !== 'done' && self.state !== 'error') {
      const err = Object.assign(new Error('Connection terminated: the cursor cannot read'), { code: 'ECONNRESET' });
      if (!callback) return Promise.reject(err);
      setImmediate(() => callback(err, [], undefined as never));
      return undefined;
    }
    return callback ? super.read(maxRows, callback) : super.read(maxRows);
  }

  override close(): Promise<void>;
  override close(callback: (err: Error) => void): undefined;
  override close(callback?: (err: Error) => void): Promise<void> | undefined {
    if ((this as unknown as { state: string }).state === 'error') {
      if (!callback) return Promise.resolve();
      setImmediate(() => callback(undefined as never));
      return undefined;
    }
    return callback ? super.close(callback) : super.close();
  }
}

export function createKysely(pool: pg.Pool): RelayDb {
  return new Kysely<RelayDatabase>({ dialect: new PostgresDialect({ pool, cursor: SafeCursor }) });
}
