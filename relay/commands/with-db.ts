// Runs one DBA command with a small pool and always closes it.
import { checkDatabase } from '../../db/check-database.js';
import { createKysely, createPool, type RelayDb } from '../../db/kysely.js';
import { databaseUrl } from './args.js';

export async function withDb<T>(fn: (db: RelayDb) => Promise<T>): Promise<T> {
  const url = databaseUrl();
  await checkDatabase(url);
  const pool = createPool(url, { max: 2, applicationName: 'pgrelay-cli' });
  const db = createKysely(pool);
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}
