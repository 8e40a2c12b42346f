#!/usr/bin/env node
// The `pgrelay` command line: start, migrate, and the DBA tools.
import { describeConfig } from './ops/config.js';
import { describeError, PgRelayError } from '../client/shared/errors.js';
import { cliCommand } from './ops/cli-command.js';

const usage = `Usage: pgrelay <command> [options]

Commands:
  start                          run the relay (embedded Postgres when DATABASE_URL is not set)
  migrate [--down]               apply (or reverse) the relay schema migrations on DATABASE_URL (as its owner)
  migrate --relay-role <name>    also make <name> the relay's login role, in relay_reader (password: RELAY_DB_PASSWORD)
  watch <table> --tenant-column <column> [--exclude a,b]
  watch <table> --no-tenant      capture a table (only all-tenant tokens see a table without tenants)
  unwatch <table>                stop capturing a table (its history stays)
  watched [--json]               list captured tables
  audit [--table t] [--tenant x] [--since 1h] [--limit n] [--json]
                                 print what was emitted, by whom, when (NDJSON with --json)
  tail [--tenant x] [--table t] [--since seq]
                                 follow the live stream straight from Postgres, one line per change, with who made it
  token --tenant <id> [--tables a,b] [--all-tenants] [--sub <id> [--name <text>]] [--ttl 1h]
                                 mint an HS256 token with RELAY_JWT_SECRET (or the dev secret of npm start);
                                 --sub and --name say who it is in presence
  help                           show this text

The DBA commands read DATABASE_URL, else the embedded database of npm start (RELAY_DATA_DIR/database-url, default
./.pgrelay). Tables are schema.table; a bare name means public.<name>.

Options of start (each also read from the environment variable shown):
${describeConfig().map((c) => `  ${`${c.flag} <value>`.padEnd(30)} ${c.env}${c.default !== undefined ? ` (default ${c.default})` : ''}`).join('\n')}
`;

// Each command loads only its own modules: `pgrelay token` should not pay for uWS, kysely and node-pg-migrate.
const commands: Record<string, (argv: readonly string[]) => Promise<void>> = {
  start: async (argv) => (argv.includes('--help') ? void process.stdout.write(usage) : (await import('./cli/start.js')).start(argv)),
  migrate: async (argv) => (await import('./cli/migrate.js')).migrateCommand(argv),
  watch: async (argv) => (await import('./cli/watch.js')).watchCommand(argv),
  unwatch: async (argv) => (await import('./cli/watch.js')).unwatchCommand(argv),
  watched: async (argv) => (await import('./cli/watch.js')).watchedCommand(argv),
  audit: async (argv) => (await import('./cli/audit.js')).auditCommand(argv),
  token: async (argv) => (await import('./cli/token.js')).tokenCommand(argv),
  tail: async (argv) => (await import('./cli/tail.js')).tailCommand(argv),
};

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(usage);
    return;
  }
  const run = commands[command];
  if (!run) throw new PgRelayError('bad_command', `Unknown command ${JSON.stringify(command)}; run ${cliCommand('help')} for the list.`);
  await run(rest);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`pgrelay: ${describeError(err)}\n`);
  if (process.env.LOG_LEVEL === 'debug' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
