// Runs one DBA command with a small pool and always closes it.
import { createKysely, createPool, type RelayDb } from '../../db/kysely.js';
import { databaseUrl } from './database-url.js';

export async function withDb<T>(fn: (db: RelayDb) => Promise<T>): Promise<T> {
  const url = await databaseUrl();
  const pool = createPool(url, { max: 2, applicationName: 'pgrelay-cli' });
  const db = createKysely(pool);
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}
