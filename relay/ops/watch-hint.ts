// The one command a fresh install needs next: watch a table. Shown in the start log and by the console.
import path from 'node:path';
import { cliCommand } from './cli-command.js';

/**
 * `npm run pgrelay -- watch <table> --tenant-column <column>` (see {@link cliCommand}), with the embedded database's URL when `stateDir` is given
 * (the state folder of `npm start` without DATABASE_URL), shown relative to the working directory when it is inside it.
 */
export function watchCommand(stateDir?: string): string {
  const watch = cliCommand('watch <table> --tenant-column <column>');
  if (!stateDir) return `DATABASE_URL=<your database URL> ${watch}`;
  const rel = path.relative(process.cwd(), path.join(stateDir, 'database-url'));
  const file = rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : path.join(stateDir, 'database-url');
  return `DATABASE_URL=$(cat ${file}) ${watch}`;
}
