// Per-test-file databases cloned from the migrated template, so files run in parallel without sharing rows.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';
import { withDatabase } from './global-setup.js';
import { trackClient } from './leaks.js';

/** A database of its own for one test file. */
export interface TestDatabase {
  /** Database name. */
  readonly name: string;
  /** Superuser URL of this database: setup, writers and DBA commands use it. */
  readonly url: string;
  /**
   * URL of this database for the run's relay role, a login role in relay_reader and no superuser: what a relay
   * connects with in tests, as in production.
   */
  readonly relayUrl: string;
  /** A new connected client on this database, which the leak check expects the test to end. */
  connect(config?: Partial<pg.ClientConfig>): Promise<pg.Client>;
  /** One query on a short-lived connection. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** URL of the same database for another role. */
  urlAs(user: string, password: string): string;
  /**
   * Runs one tick (relay.tick in a REPEATABLE READ transaction): every transaction committed before it gets its seq
   * and its NOTIFY. Tests that run no relay (and so no ticker) call it after writing.
   */
  tick(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase & { drop(): Promise<void> }> {
  const adminUrl = inject('pgAdminUrl');
  const name = `pgrelay_t_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name} template ${inject('pgTemplate')}`);
    // The test server allows PREPARE TRANSACTION (max_prepared_transactions > 0), where writers wake a sleeping ticker
    // only when told to: as on a server with Postgres's default of 0, where they do by themselves.
    await admin.query(`alter database ${name} set relay.wake = on`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminUrl, name);
  const urlAs = (user: string, password: string) => {
    const u = new URL(url);
    u.username = encodeURIComponent(user);
    u.password = encodeURIComponent(password);
    return u.toString();
  };
  const role = inject('pgRelayRole');
  const db = {
    name,
    url,
    relayUrl: urlAs(role.user, role.password),
    async connect(config: Partial<pg.ClientConfig> = {}) {
      const client = new pg.Client({ connectionString: url, ...config });
      await client.connect();
      return trackClient(client);
    },
    async query<R extends pg.QueryResultRow>(text: string, values?: unknown[]) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return await client.query<R>(text, values);
      } finally {
        await client.end();
      }
    },
    async tick() {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query('begin isolation level repeatable read');
        await client.query('select relay.tick()');
        await client.query('commit');
      } finally {
        await client.end();
      }
    },
    urlAs,
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
  return db;
}

/** Gives the calling test file its own database for all its tests, dropped after the last one. */
export function useTestDatabase(): TestDatabase {
  let db: (TestDatabase & { drop(): Promise<void> }) | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });
  const get = (): TestDatabase => {
    if (!db) throw new Error('useTestDatabase(): the database is created in beforeAll; use it inside tests or hooks.');
    return db;
  };
  return {
    get name() { return get().name; },
    get url() { return get().url; },
    get relayUrl() { return get().relayUrl; },
    connect: (config) => get().connect(config),
    query: (text, values) => get().query(text, values),
    urlAs: (user, password) => get().urlAs(user, password),
    tick: () => get().tick(),
  };
}
