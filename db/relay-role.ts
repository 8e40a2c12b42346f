// The relay's own login role, a member of relay_reader: made (or brought in line) by `pgrelay migrate --relay-role`.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import pg from 'pg';
import { PgRelayError } from '../client/shared/errors.js';
import { SqlState } from './sqlstate.js';

/** What {@link ensureRelayRole} did. */
export type RelayRoleOutcome = 'created' | 'password_set' | 'unchanged';

/**
 * A SCRAM-SHA-256 verifier of `password` in the form Postgres stores (`SCRAM-SHA-256$4096:salt$StoredKey:ServerKey`),
 * so that the password itself never reaches the server, its statement log or pg_stat_activity (psql's `\password`
 * does the same). Postgres would SASLprep a non-ASCII password first: those are sent as they are, for it to do so.
 */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/**
 * Makes `role` a login role in relay_reader: creates it with `password`, or, when it exists, sets its password (when
 * one is given) and its membership. Refuses a role with powers of its own (superuser, CREATEROLE, CREATEDB,
 * BYPASSRLS, REPLICATION) and the role running this, whose password it would change under it.
 */
export async function ensureRelayRole(databaseUrl: string, role: string, password: string | undefined): Promise<RelayRoleOutcome> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ powerful: boolean; me: boolean }>(
      `select rolsuper or rolcreaterole or rolcreatedb or rolbypassrls or rolreplication as powerful, rolname = current_user as me
       from pg_roles where rolname = $1`, [role]);
    const existing = rows[0];
    if (existing?.me) {
      throw new PgRelayError('bad_relay_role', `Role ${role} is the one running the migrations; the relay needs a login role of its own: name another with --relay-role.`);
    }
    if (existing?.powerful) {
      throw new PgRelayError('bad_relay_role', `Role ${role} is a superuser or may create roles or databases, bypass row security or replicate; the relay's role should be a plain login role: name another with --relay-role.`);
    }
    if (!existing && !password) {
      throw new PgRelayError('bad_arguments', `Role ${role} does not exist yet: set RELAY_DB_PASSWORD to the password it should log in with (openssl rand -hex 24 makes one).`);
    }
    const name = client.escapeIdentifier(role);
    const secret = password === undefined ? '' : ` password ${client.escapeLiteral(/^[\x20-\x7e]*$/.test(password) ? scramVerifier(password) : password)}`;
    if (!existing) {
      await client.query(`create role ${name} login${secret} in role relay_reader`);
      return 'created';
    }
    await client.query(`alter role ${name} login${secret}`);
    await client.query(`grant relay_reader to ${name}`);
    return password === undefined ? 'unchanged' : 'password_set';
  } catch (err) {
    if ((err as { code?: string }).code !== SqlState.InsufficientPrivilege) throw err;
    throw new PgRelayError('bad_relay_role', `The role running the migrations may not create or alter role ${role}, or grant it relay_reader (${(err as Error).message}); run pgrelay migrate --relay-role as a superuser or a role with CREATEROLE and ADMIN on relay_reader, or create it yourself: create role ${role} login password '…' in role relay_reader.`, { cause: err });
  } finally {
    await client.end();
  }
}
