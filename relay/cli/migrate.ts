// `pgrelay migrate [--down] [--relay-role <name>]`: applies (or reverses) the relay schema on DATABASE_URL, and makes the relay's login role.
import { migrate } from '../../db/migrate.js';
import { ensureRelayRole } from '../../db/relay-role.js';
import { PgRelayError } from '../../client/shared/errors.js';
import { parseArgs } from './args.js';
import { databaseUrl } from './database-url.js';

export async function migrateCommand(argv: readonly string[]): Promise<void> {
  const { options } = parseArgs(argv, ['relay-role'], ['down']);
  const down = options.has('down');
  const relayRole = options.get('relay-role');
  if (down && relayRole !== undefined) throw new PgRelayError('bad_arguments', '--relay-role goes with applying migrations, not with --down.');
  const url = await databaseUrl();
  const ran = await migrate(url, { direction: down ? 'down' : 'up', log: (l) => console.log(l) });
  if (ran.length === 0) console.log(down ? 'nothing to reverse' : 'pgrelay migrations already up to date');
  else console.log(down ? `reversed ${ran.length} migration(s)` : `applied ${ran.length} migration(s)`);
  if (typeof relayRole === 'string') {
    // the password comes from the environment: a flag would show in ps
    const outcome = await ensureRelayRole(url, relayRole, process.env.RELAY_DB_PASSWORD || undefined);
    const said = { created: 'created, a member of relay_reader', password_set: 'password set from RELAY_DB_PASSWORD, a member of relay_reader', unchanged: 'a member of relay_reader (password unchanged: RELAY_DB_PASSWORD is not set)' };
    console.log(`relay role ${relayRole}: ${said[outcome]}`);
  }
}
