#!/usr/bin/env node
// The `pgrelay` command line: start, migrate, and the DBA tools.
import { migrate } from '../db/migrate.js';
import { describeConfig } from './config.js';
import { describeError, PgRelayError } from './errors.js';
import { start } from './start.js';

const usage = `Usage: pgrelay <command> [options]

Commands:
  start              run the relay (embedded Postgres when DATABASE_URL is not set)
  migrate [--down]   apply (or reverse) the relay schema migrations on DATABASE_URL
  help               show this text

Options of start (each also read from the environment variable shown):
${describeConfig().map((c) => `  ${`${c.flag} <value>`.padEnd(30)} ${c.env}${c.default !== undefined ? ` (default ${c.default})` : ''}`).join('\n')}
`;

function requireDatabaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new PgRelayError('bad_config', 'DATABASE_URL is not set; point it at the database to manage.');
  return url;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      if (rest.includes('--help')) return void process.stdout.write(usage);
      return start(rest);
    case 'migrate': {
      const down = rest.includes('--down');
      await migrate(requireDatabaseUrl(), { direction: down ? 'down' : 'up', log: (l) => console.log(l) });
      console.log(down ? 'pgrelay migrations reversed' : 'pgrelay migrations up to date');
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage);
      return;
    default:
      throw new PgRelayError('bad_command', `Unknown command ${JSON.stringify(command)}; run pgrelay help for the list.`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`pgrelay: ${describeError(err)}\n`);
  if (process.env.LOG_LEVEL === 'debug' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
