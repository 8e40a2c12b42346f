// Every setting of the relay: its variable, its key in RelayConfig, its schema, its default and what it accepts.
import { z } from 'zod';
import { isPublishedSecret } from './published-secrets.js';
import { bytesIn, interval, intIn, KiB, MiB, urlWith } from './config-values.js';
import type { RelayConfig } from './relay-config.js';

/** One setting: an environment variable (and its `pgrelay start` flag) and how its value is read. */
export interface ConfigField {
  /** The environment variable. */
  env: string;
  /** Where its value goes in {@link RelayConfig}. */
  key: keyof RelayConfig;
  /** What it accepts: the rest of the sentence that starts with the variable's name. */
  accepts: string;
  /** Reads the raw string. */
  schema: z.ZodType;
  /** The raw value when unset. Default: none (the field is undefined). */
  default?: string;
  /** The default without `DATABASE_URL` (embedded development mode), when it differs. */
  embeddedDefault?: string;
  /** Refuses a well-formed value (`parsed`: the fields before it): the rest of the sentence that starts with the variable's name. */
  refuse?: (value: unknown, parsed: Readonly<Record<string, unknown>>) => string | undefined;
}

/** The settings in the order they are read (`DATABASE_URL` first: the embedded defaults depend on it). */
export const configFields: readonly ConfigField[] = [
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
