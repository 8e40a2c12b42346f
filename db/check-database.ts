// Checks that a database answers, turning connection failures into one sentence a person can act on.
import pg from 'pg';
import { PgRelayError } from '../client/shared/errors.js';

function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}

function reason(err: unknown): string {
  const e = err as { code?: string; message?: string };
  switch (e.code) {
    case 'ECONNREFUSED': return 'connection refused (is Postgres running there?)';
    case 'ENOTFOUND': case 'EAI_AGAIN': return 'the host name does not resolve';
    case 'ETIMEDOUT': return 'the connection timed out';
    case '28P01': case '28000': return 'authentication failed';
    case '3D000': return 'the database does not exist';
    default: return (e.message ?? String(err)).replace(/\.$/, '');
  }
}

/** What a reachable database says about itself and about the role connected to it. */
export interface DatabaseInfo {
  /** `server_version_num`, e.g. 160004. */
  readonly serverVersionNum: number;
  /** The role connected (`current_user`). */
  readonly role: string;
  /** Whether that role is a superuser (the relay needs only relay_reader). */
  readonly superuser: boolean;
}

/** Resolves when `url` answers within `timeoutMs`; throws a PgRelayError otherwise. */
export async function checkDatabase(url: string, timeoutMs = 5000): Promise<DatabaseInfo> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ v: string; role: string; superuser: boolean }>(
      `select current_setting('server_version_num') as v, current_user as role, (select rolsuper from pg_roles where rolname = current_user) as superuser`);
    return { serverVersionNum: Number(rows[0]!.v), role: rows[0]!.role, superuser: rows[0]!.superuser };
  } catch (err) {
    throw new PgRelayError('database_unreachable', `Cannot connect to the database at ${where(url)}: ${reason(err)}.`, { cause: err });
  } finally {
    await client.end().catch(() => undefined);
  }
}
