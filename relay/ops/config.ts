// The relay's configuration: environment variables and `pgrelay start` flags, parsed once by zod and frozen.
import { z } from 'zod';
import { ConfigError } from '../../client/shared/errors.js';
import { isPublishedSecret } from './published-secrets.js';
import { cliCommand } from './cli-command.js';

/** The relay's settings. Every field names its variable and default. */
export interface RelayConfig {
  /** `DATABASE_URL`: the database to relay. Default: none, `pgrelay start` then runs an embedded Postgres. Must be a direct connection (LISTEN does not work through a transaction-mode pooler). */
  readonly databaseUrl: string | undefined;
  /** `PORT`: HTTP and WebSocket port. Default 8080; 0 picks a free port. */
  readonly port: number;
  /** `HOST`: interface to listen on. Default `0.0.0.0`; `127.0.0.1` without `DATABASE_URL` (the embedded development mode hands out dev tokens). */
  readonly host: string;
  /**
   * `METRICS_PORT`: serve `/metrics` (with `/healthz` and `/readyz`) on a listener of its own, on `METRICS_HOST`, and not
   * on `PORT`. Default: none (`/metrics` is on `PORT`, see `metricsToken`); 0 picks a free port.
   */
  readonly metricsPort: number | undefined;
  /** `METRICS_HOST`: interface of the `METRICS_PORT` listener. Default `127.0.0.1`: only this machine (and a Prometheus agent on it) reaches it. */
  readonly metricsHost: string;
  /**
   * `RELAY_METRICS_TOKEN`: `/metrics` answers only requests carrying `Authorization: Bearer <token>` (Prometheus's
   * `authorization` setting sends it), on whichever port serves it. Default: none; then `/metrics` on `PORT` answers only
   * while `HOST` is a loopback address (a relay other machines can reach needs this token or `METRICS_PORT`).
   */
  readonly metricsToken: string | undefined;
  /** `RELAY_JWT_SECRET`: HS256 secret for client tokens (at least 32 bytes, and not an example pgrelay's files print). Default: none (one of it or `RELAY_JWKS_URL` is required, except with the embedded database, which generates a dev secret). */
  readonly jwtSecret: string | undefined;
  /** `RELAY_JWKS_URL`: JWKS endpoint for asymmetric tokens (RS256, ES256, EdDSA…). Default: none. */
  readonly jwksUrl: string | undefined;
  /** `RELAY_JWT_AUDIENCE`: required `aud`, when set. Default: not checked. */
  readonly jwtAudience: string | undefined;
  /** `RELAY_JWT_ISSUER`: required `iss`, when set. Default: not checked. */
  readonly jwtIssuer: string | undefined;
  /** `RELAY_TENANT_CLAIM`: the claim holding the tenant id. Default `tenant_id`. */
  readonly tenantClaim: string;
  /** `RELAY_ROLE_CLAIM`: the claim holding the role that picks a table's access rule (relay.allow). Default `role`. */
  readonly roleClaim: string;
  /** `RELAY_PRESENCE_CLAIM`: the claim holding the display name other members of the tenant see next to a member's `sub` in presence. Default `name`. */
  readonly presenceClaim: string;
  /** `RELAY_PRESENCE_TTL_MS`: how long a relay's presence entries live without a refresh (it refreshes every third of it); the members of a relay that stops without closing leave within 4/3 of it. Default 15000. */
  readonly presenceTtlMs: number;
  /** `RELAY_ALLOWED_ORIGINS`: comma-separated `Origin` values allowed to open a socket. Default: any origin. */
  readonly allowedOrigins: readonly string[] | undefined;
  /** `RELAY_HISTORY_TX`: transactions kept in the in-memory ring for fast resume. Default 20000. */
  readonly historyTx: number;
  /** `RELAY_HISTORY_BYTES`: bytes the ring may hold. Default 64 MiB. */
  readonly historyBytes: number;
  /** `RELAY_RETENTION`: how long `relay.changes` keeps history (a Postgres interval). Default `7 days`. */
  readonly retention: string;
  /** `RELAY_PRUNE_INTERVAL_MS`: how often one relay prunes history. Default 1 hour. */
  readonly pruneIntervalMs: number;
  /** `RELAY_MAX_BACKPRESSURE`: bytes buffered for one socket before it is closed with 4008 (it resumes from its cursor). Default 4 MiB. */
  readonly maxBackpressure: number;
  /** `RELAY_MAX_SUBSCRIPTIONS`: subscriptions per socket. Default 100. */
  readonly maxSubscriptions: number;
  /** `RELAY_MAX_FRAME`: bytes of one outgoing `tx` or `snapshot` frame; larger transactions are split. Default 256 KiB. */
  readonly maxFrame: number;
  /** `RELAY_MAX_MESSAGE`: bytes of one incoming client message; larger ones close the socket (1009). Default 16 KiB. */
  readonly maxMessage: number;
  /** `RELAY_RATE_LIMIT`: client messages per second per socket (burst of the same size). Default 50. */
  readonly rateLimit: number;
  /** `RELAY_IDLE_TIMEOUT`: seconds without traffic before a socket is considered dead; pings go out before. Default 60. */
  readonly idleTimeout: number;
  /** `RELAY_SERVER`: `uws` (native uWebSockets.js), `ws` (the `ws` + `node:http` fallback) or `auto` (uws where a native build loads, else ws). Default `auto`. */
  readonly server: 'auto' | 'uws' | 'ws';
  /**
   * `RELAY_COMPRESSION`: `on` compresses every frame (permessage-deflate) for clients that offer it (browsers do), with no
   * context kept between frames, so no compression state per socket; `off` never negotiates it. Default `off`.
   */
  readonly compression: 'off' | 'on';
  /**
   * `RELAY_REUSEPORT`: `on` lets several relay processes listen on the same host and port (SO_REUSEPORT: the kernel
   * spreads connections over them, one process a core); every one of them must set it. `off` makes a port another
   * process holds an error, so a second `npm start` left running by mistake cannot silently take half the clients. Default `off`.
   */
  readonly reusePort: boolean;
  /** `RELAY_DATA_DIR`: where `npm start` keeps the embedded database and dev secret. Default `./.pgrelay`. */
  readonly dataDir: string;
  /** `LOG_LEVEL`: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`. Default `info`. */
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** `LOG_FORMAT`: `pretty` (readable lines), `json` (JSON lines) or `auto` (pretty when stdout is a terminal). Default `auto`. */
  readonly logFormat: 'auto' | 'pretty' | 'json';
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** Parses `65536`, `64kb`, `64KiB`, `4mb`, `1 GiB`. */
function parseBytes(raw: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$/i.exec(raw);
  if (!m) return undefined;
  const unit = (m[2] ?? 'b').toLowerCase()[0];
  const mult = unit === 'k' ? KiB : unit === 'm' ? MiB : unit === 'g' ? 1024 * MiB : 1;
  return Math.floor(Number(m[1]) * mult);
}

// Plain decimal digits only: a blank value, `0x10` or `1e3` is a mistake, not a number.
const intIn = (min: number, max: number) =>
  z.string().regex(/^\s*\d{1,15}\s*$/).transform(Number).refine((n) => n >= min && n <= max);
const bytesIn = (min: number, max: number) =>
  z.string().transform((s, ctx) => {
    const n = parseBytes(s);
    if (n === undefined || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: 'bad size' });
      return z.NEVER;
    }
    return n;
  });
/** A URL whose protocol passes `protocol`; never throws (a TypeError would carry the raw URL, password included). */
const urlWith = (protocol: RegExp) =>
  z.string().refine((s) => {
    try {
      return protocol.test(new URL(s).protocol);
    } catch {
      return false;
    }
  });
// An interval Postgres accepts and pruning can use: numbers with units, each unit once ("7 days", "12 hours 30 minutes"),
// up to 100 years in all.
const unitSeconds: Record<string, number> = { second: 1, minute: 60, hour: 3600, day: 86400, week: 604800, month: 2592000, year: 31557600 };
function unitOf(u: string): string | undefined {
  const l = u.toLowerCase();
  if (/^(s|secs?|seconds?)$/.test(l)) return 'second';
  if (/^(m|mins?|minutes?)$/.test(l)) return 'minute';
  if (/^(h|hours?)$/.test(l)) return 'hour';
  if (/^(d|days?)$/.test(l)) return 'day';
  if (/^(w|weeks?)$/.test(l)) return 'week';
  if (/^(mons?|months?)$/.test(l)) return 'month';
  if (/^(y|years?)$/.test(l)) return 'year';
  return undefined;
}
const interval = z.string().refine((s) => {
  const parts = [...s.matchAll(/(\d{1,9})\s*([a-z]+)/gi)];
  if (parts.length === 0 || s.replace(/(\d{1,9})\s*([a-z]+)/gi, '').trim() !== '') return false;
  const units = parts.map((p) => unitOf(p[2]!));
  if (units.some((u) => u === undefined) || new Set(units).size !== units.length) return false;
  const total = parts.reduce((sum, p, i) => sum + Number(p[1]) * unitSeconds[units[i]!]!, 0);
  return total > 0 && total <= 100 * unitSeconds.year!;
});

interface Field {
  env: string;
  key: keyof RelayConfig;
  accepts: string;
  schema: z.ZodType;
  default?: string;
  /** The default without `DATABASE_URL` (embedded development mode), when it differs. */
  embeddedDefault?: string;
  /** Refuses a well-formed value (`parsed`: the fields before it): the rest of the sentence that starts with the variable's name. */
  refuse?: (value: unknown, parsed: Readonly<Record<string, unknown>>) => string | undefined;
}

const fields: Field[] = [
  { env: 'DATABASE_URL', key: 'databaseUrl', accepts: 'must be a postgres:// connection URL', schema: urlWith(/^postgres(ql)?:$/) },
  { env: 'PORT', key: 'port', accepts: 'must be a TCP port number from 0 to 65535', schema: intIn(0, 65535), default: '8080' },
  // without DATABASE_URL, `pgrelay start` runs the embedded database and its console hands out dev tokens: stay local
  { env: 'HOST', key: 'host', accepts: 'must be a host name or IP address to listen on', schema: z.string().min(1).regex(/^[\w.:-]+$/), default: '0.0.0.0', embeddedDefault: '127.0.0.1' },
  {
    env: 'METRICS_PORT', key: 'metricsPort', accepts: 'must be a TCP port number from 0 to 65535', schema: intIn(0, 65535),
    refuse: (v, parsed) => (v !== 0 && v === parsed.port
      ? `is ${v as number}, the port of the clients (PORT); give the metrics a port of their own, or leave METRICS_PORT unset and set RELAY_METRICS_TOKEN.`
      : undefined),
  },
  { env: 'METRICS_HOST', key: 'metricsHost', accepts: 'must be a host name or IP address to listen on', schema: z.string().min(1).regex(/^[\w.:-]+$/), default: '127.0.0.1' },
  {
    env: 'RELAY_METRICS_TOKEN', key: 'metricsToken', accepts: 'must be at least 16 printable characters with no spaces (Prometheus sends it as Authorization: Bearer <token>)',
    schema: z.string().min(16).regex(/^[\x21-\x7e]+$/),
  },
  {
    env: 'RELAY_JWT_SECRET', key: 'jwtSecret', accepts: 'must be at least 32 characters long (HS256 needs 256 bits of secret)', schema: z.string().min(32),
    refuse: (v) => (isPublishedSecret(v as string)
      ? "is an example printed in pgrelay's own files (docker-compose.yml of 0.2.0 and earlier), so anyone could sign tokens the relay accepts; make a secret of your own with: openssl rand -hex 32."
      : undefined),
  },
  { env: 'RELAY_JWKS_URL', key: 'jwksUrl', accepts: 'must be an http(s) URL of a JSON Web Key Set', schema: urlWith(/^https?:$/) },
  { env: 'RELAY_JWT_AUDIENCE', key: 'jwtAudience', accepts: 'must be a non-empty audience string', schema: z.string().min(1) },
  { env: 'RELAY_JWT_ISSUER', key: 'jwtIssuer', accepts: 'must be a non-empty issuer string', schema: z.string().min(1) },
  { env: 'RELAY_TENANT_CLAIM', key: 'tenantClaim', accepts: 'must be a claim name (letters, digits, _ . : -)', schema: z.string().regex(/^[\w.:-]+$/), default: 'tenant_id' },
  { env: 'RELAY_ROLE_CLAIM', key: 'roleClaim', accepts: 'must be a claim name (letters, digits, _ . : -)', schema: z.string().regex(/^[\w.:-]+$/), default: 'role' },
  { env: 'RELAY_PRESENCE_CLAIM', key: 'presenceClaim', accepts: 'must be a claim name (letters, digits, _ . : -)', schema: z.string().regex(/^[\w.:-]+$/), default: 'name' },
  { env: 'RELAY_PRESENCE_TTL_MS', key: 'presenceTtlMs', accepts: 'must be milliseconds from 1000 to 600000', schema: intIn(1000, 600_000), default: '15000' },
  {
    env: 'RELAY_ALLOWED_ORIGINS', key: 'allowedOrigins', accepts: 'must be a comma-separated list of origins such as https://app.example.com',
    schema: z.string().transform((s, ctx) => {
      // Stored as browsers send them (lowercase host, no default port), so the check is a plain comparison.
      const list: string[] = [];
      for (const o of s.split(',').map((x) => x.trim()).filter(Boolean)) {
        let origin: string | undefined;
        try {
          const u = new URL(o);
          if (/^https?:$/.test(u.protocol) && !u.username && !u.password && (u.pathname === '/' || u.pathname === '') && !u.search && !u.hash && !/\/./.test(o.replace(/^https?:\/\//, ''))) origin = u.origin;
        } catch {
          origin = undefined;
        }
        if (!origin) {
          ctx.addIssue({ code: 'custom', message: 'bad origin' });
          return z.NEVER;
        }
        list.push(origin);
      }
      if (list.length === 0) {
        ctx.addIssue({ code: 'custom', message: 'no origin' });
        return z.NEVER;
      }
      return Object.freeze(list);
    }),
  },
  { env: 'RELAY_HISTORY_TX', key: 'historyTx', accepts: 'must be an integer from 0 to 10000000', schema: intIn(0, 10_000_000), default: '20000' },
  { env: 'RELAY_HISTORY_BYTES', key: 'historyBytes', accepts: 'must be a size from 0 to 16gb, such as 64mb', schema: bytesIn(0, 16 * 1024 * MiB), default: '64mb' },
  { env: 'RELAY_RETENTION', key: 'retention', accepts: 'must be a Postgres interval such as "7 days" or "12 hours"', schema: interval, default: '7 days' },
  { env: 'RELAY_PRUNE_INTERVAL_MS', key: 'pruneIntervalMs', accepts: 'must be milliseconds from 1000 to 604800000', schema: intIn(1000, 604_800_000), default: '3600000' },
  { env: 'RELAY_MAX_BACKPRESSURE', key: 'maxBackpressure', accepts: 'must be a size from 64kb to 1gb, such as 4mb', schema: bytesIn(64 * KiB, 1024 * MiB), default: '4mb' },
  { env: 'RELAY_MAX_SUBSCRIPTIONS', key: 'maxSubscriptions', accepts: 'must be an integer from 1 to 10000', schema: intIn(1, 10_000), default: '100' },
  { env: 'RELAY_MAX_FRAME', key: 'maxFrame', accepts: 'must be a size from 16kb to 64mb, such as 256kb', schema: bytesIn(16 * KiB, 64 * MiB), default: '256kb' },
  { env: 'RELAY_MAX_MESSAGE', key: 'maxMessage', accepts: 'must be a size from 1kb to 1mb, such as 16kb', schema: bytesIn(KiB, MiB), default: '16kb' },
  { env: 'RELAY_RATE_LIMIT', key: 'rateLimit', accepts: 'must be an integer from 1 to 100000 (messages per second)', schema: intIn(1, 100_000), default: '50' },
  { env: 'RELAY_IDLE_TIMEOUT', key: 'idleTimeout', accepts: 'must be seconds from 8 to 960 (a multiple of 4)', schema: intIn(8, 960).refine((n) => n % 4 === 0), default: '60' },
  { env: 'RELAY_SERVER', key: 'server', accepts: 'must be one of auto, uws, ws', schema: z.enum(['auto', 'uws', 'ws']), default: 'auto' },
  { env: 'RELAY_COMPRESSION', key: 'compression', accepts: 'must be one of off, on', schema: z.enum(['off', 'on']), default: 'off' },
  {
    env: 'RELAY_REUSEPORT', key: 'reusePort', accepts: 'must be one of off, on (or 0, 1)', default: 'off',
    schema: z.enum(['off', 'on', '0', '1']).transform((v) => v === 'on' || v === '1'),
  },
  { env: 'RELAY_DATA_DIR', key: 'dataDir', accepts: 'must be a folder path', schema: z.string().min(1), default: './.pgrelay' },
  { env: 'LOG_LEVEL', key: 'logLevel', accepts: 'must be one of fatal, error, warn, info, debug, trace, silent', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), default: 'info' },
  { env: 'LOG_FORMAT', key: 'logFormat', accepts: 'must be one of auto, pretty, json', schema: z.enum(['auto', 'pretty', 'json']), default: 'auto' },
];

/** The `pgrelay start` flag for a variable: `RELAY_HISTORY_TX` → `--history-tx`, `DATABASE_URL` → `--database-url`. */
export function flagFor(env: string): string {
  return `--${env.replace(/^RELAY_/, '').toLowerCase().replace(/_/g, '-')}`;
}

/** Every variable with its default and what it accepts, for `pgrelay start --help` and the README. */
export function describeConfig(): Array<{ env: string; flag: string; default: string | undefined; accepts: string }> {
  return fields.map((f) => ({
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
  for (const f of fields) {
    const flag = flagFor(f.env);
    const fromFlag = flags.get(flag);
    // DATABASE_URL comes first in `fields`, so whether the database is embedded is known here
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
      const shown = f.env === 'RELAY_JWT_SECRET' || f.env === 'DATABASE_URL' || f.env === 'RELAY_METRICS_TOKEN' ? '(value hidden)' : JSON.stringify(raw);
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
    if (!arg.startsWith('--')) throw new ConfigError(`Unexpected argument ${JSON.stringify(arg)}; options look like --port 8080.`);
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
