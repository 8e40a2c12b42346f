// The database the DBA commands work on: DATABASE_URL, else the embedded database that `npm start` runs.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { checkDatabase } from '../../db/check-database.js';
import { PgRelayError } from '../../client/shared/errors.js';
import { stateDir } from '../ops/dev-tokens.js';

/** Where a command's database URL came from. */
export interface DatabaseUrlSource {
  url: string;
  /** The `database-url` file of `npm start` it was read from; undefined when DATABASE_URL gave it. */
  file: string | undefined;
}

/** DATABASE_URL, else the URL `npm start` wrote to `<RELAY_DATA_DIR>/database-url`. */
export function findDatabaseUrl(env: NodeJS.ProcessEnv = process.env): DatabaseUrlSource {
  if (env.DATABASE_URL) return { url: env.DATABASE_URL, file: undefined };
  const file = path.join(stateDir(env), 'database-url');
  const url = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
  if (!url) {
    throw new PgRelayError('bad_config', `DATABASE_URL is not set and ${file} does not exist; point DATABASE_URL at the database to manage, or run npm start first (it writes ${file}).`);
  }
  return { url, file };
}

/**
 * The database of a DBA command, checked to answer. Says on stderr, in one line, when it is the embedded one,
 * and when that one does not answer, that `npm start` runs it.
 */
export async function databaseUrl(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const { url, file } = findDatabaseUrl(env);
  if (!file) {
    await checkDatabase(url);
    return url;
  }
  process.stderr.write(`pgrelay: DATABASE_URL is not set; using the embedded database of npm start (${file})\n`);
  try {
    await checkDatabase(url);
  } catch (err) {
    if (!(err instanceof PgRelayError) || err.code !== 'database_unreachable') throw err;
    throw new PgRelayError(err.code, `${err.message.replace(/\.$/, '')}; that is the embedded database of npm start (${file}): is npm start running?`, { cause: err });
  }
  return url;
}
