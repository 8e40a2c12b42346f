// The relay's configuration: environment variables and `pgrelay start` flags, parsed once by zod and frozen.
import { ConfigError } from '../../client/shared/errors.js';
import { cliCommand } from './cli-command.js';
import { configFields } from './config-fields.js';
import type { RelayConfig } from './relay-config.js';

/** The `pgrelay start` flag for a variable: `RELAY_HISTORY_TX` → `--history-tx`, `DATABASE_URL` → `--database-url`. */
export function flagFor(env: string): string {
  return `--${env.replace(/^RELAY_/, '').toLowerCase().replace(/_/g, '-')}`;
}

/** Every variable with its default and what it accepts, for `pgrelay start --help` and the README. */
export function describeConfig(): Array<{ env: string; flag: string; default: string | undefined; accepts: string }> {
  return configFields.map((f) => ({
    env: f.env, flag: flagFor(f.env), accepts: f.accepts,
    default: f.embeddedDefault !== undefined ? `${f.default}; ${f.embeddedDefault} without DATABASE_URL` : f.default,
  }));
}

/**
 * Parses flags (`--port 9000` or `--port=9000`, taking precedence) and environment variables.
 * Throws a {@link ConfigError} that names every problem at once: one sentence naming the variable and what it
 * accepts, or, for several, one such sentence a line.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = []): RelayConfig {
  const flags = parseFlags(argv);
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const f of configFields) {
    const flag = flagFor(f.env);
    const fromFlag = flags.get(flag);
    // DATABASE_URL comes first in `configFields`, so whether the database is embedded is known here
    const fallback = f.embeddedDefault !== undefined && out.databaseUrl === undefined ? f.embeddedDefault : f.default;
    const raw = fromFlag ?? (env[f.env] === '' ? undefined : env[f.env]) ?? fallback;
    flags.delete(flag);
    if (raw === undefined) {
      out[f.key] = undefined;
      continue;
    }
    const source = fromFlag !== undefined ? `${flag} (${f.env})` : f.env;
    const parsed = f.schema.safeParse(raw);
    if (!parsed.success) {
      const shown = f.env === 'RELAY_JWT_SECRET' || f.env === 'DATABASE_URL' || f.env === 'RELAY_METRICS_TOKEN' ? '(value hidden)' : quoted(raw);
      problems.push(`${source} ${f.accepts}; got ${shown}.`);
      continue;
    }
    const refusal = f.refuse?.(parsed.data, out);
    if (refusal) problems.push(`${source} ${refusal}`);
    else out[f.key] = parsed.data;
  }
  for (const unknown of flags.keys()) problems.push(`Unknown option ${unknown}; run ${cliCommand('start --help')} for the list.`);
  if (out.jwtSecret !== undefined && out.jwksUrl !== undefined) {
    problems.push('RELAY_JWT_SECRET and RELAY_JWKS_URL are both set; set only one of them.');
  }
  if (problems.length > 0) throw configProblems(problems);
  return Object.freeze(out) as unknown as RelayConfig;
}

/** `value` in double quotes, on one line: JSON.stringify leaves U+2028 and U+2029 as they are, and they break lines too. */
function quoted(value: string): string {
  return JSON.stringify(value).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

/**
 * One ConfigError for every problem found: a user fixing one setting learns about the next one now, not after another
 * start. A single problem is its own sentence; several are one a line, under a line that counts them.
 */
export function configProblems(problems: readonly string[]): ConfigError {
  if (problems.length === 1) return new ConfigError(problems[0]!);
  return new ConfigError(`${problems.length} settings need fixing:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
}

function parseFlags(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`Unexpected argument ${quoted(arg)}; options look like --port 8080.`);
    const eq = arg.indexOf('=');
    if (eq > 0) {
      flags.set(arg.slice(0, eq), arg.slice(eq + 1));
    } else {
      const value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) throw new ConfigError(`Option ${arg} needs a value.`);
      flags.set(arg, value);
      i++;
    }
  }
  return flags;
}
