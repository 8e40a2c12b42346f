// A small argument parser for the DBA commands: positionals, `--name value`, `--name=value` and boolean switches.
import { PgRelayError } from '../../client/shared/errors.js';
import { cliCommand } from '../ops/cli-command.js';

export interface ParsedArgs {
  positionals: string[];
  options: Map<string, string | true>;
}

/** Parses `argv`; `switches` are the options that take no value. Unknown options are refused. */
export function parseArgs(argv: readonly string[], valued: readonly string[], switches: readonly string[] = []): ParsedArgs {
  const positionals: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    if (switches.includes(name)) {
      options.set(name, true);
    } else if (valued.includes(name)) {
      const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || value.startsWith('--')) throw new PgRelayError('bad_arguments', `Option --${name} needs a value.`);
      options.set(name, value);
    } else {
      throw new PgRelayError('bad_arguments', `Unknown option --${name}; run ${cliCommand('help')} for the list.`);
    }
  }
  return { positionals, options };
}
