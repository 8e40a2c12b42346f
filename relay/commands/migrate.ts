// `pgrelay migrate [--down]`: applies (or reverses) the relay schema on DATABASE_URL.
import { migrate } from '../../db/migrate.js';
import { parseArgs } from './args.js';
import { databaseUrl } from './database-url.js';

export async function migrateCommand(argv: readonly string[]): Promise<void> {
  const { options } = parseArgs(argv, [], ['down']);
  const down = options.has('down');
  const ran = await migrate(await databaseUrl(), { direction: down ? 'down' : 'up', log: (l) => console.log(l) });
  if (ran.length === 0) console.log(down ? 'nothing to reverse' : 'pgrelay migrations already up to date');
  else console.log(down ? `reversed ${ran.length} migration(s)` : `applied ${ran.length} migration(s)`);
}
