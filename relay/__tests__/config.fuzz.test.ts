// Configuration under hostile values: every variable either takes a value that means what it says or fails with one ConfigError sentence naming it, and secrets never show.
import { inspect } from 'node:util';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/testing/index.js';
import { principalOf } from '../routing/auth.js';
import { describeConfig, flagFor, loadConfig } from '../ops/config.js';
import type { RelayConfig } from '../ops/relay-config.js';
import { ConfigError } from '../../client/shared/errors.js';
import { budget, fuzzSeed, reportFigures } from './support/fuzz-budget.js';

const db = useTestDatabase();
const MARK = 'SeCrEt-MaRkEr';

const HOSTILE = [
  '', ' ', '\t', '\n', '\r\n', ' 8080 ', 'é', '\u{1F600}', '\u0000', '\u202e', 'a\u2028b', '\u2029', '99999999999999999999', '-1', '-0', '0', '4', '8', '960', '961', '964',
  '1e309', '1e3', '0x10', '0b11', '0o7', 'NaN', 'Infinity', '-Infinity', '1.5', '08', '+80', '1,000', '1_000',
  '1; drop table relay.changes; --', "' or 1=1 --", '7 days; drop table x', '7 days\n; select 1', 'a\nb', 'x'.repeat(10_000), '%s%n', '${HOME}', '$(id)', '`id`',
  '64kb', '1gb', '17gb', '0.5kb', '1 GiB', '-64kb', '1e3kb', '7 days', '1 day 2 days', '99999999999 years', '2147483648 days', '0 days', '1 w', '1 m',
  'info', 'INFO', 'silent', 'tenant_id', '__proto__', 'constructor', 'toString', 'org.id', 'a b',
  'localhost', '127.0.0.1', '::1', '0.0.0.0', 'host name', 'localhost\n', '-', '.',
  'https://app.example.com', 'https://App.Example.com', 'http://a:99999', 'http://a,https://b', ', ,', 'http://x/path', 'javascript:alert(1)',
  'postgres://u:p@127.0.0.1:5432/db', 'postgresql://h/db', 'postgres://u:pa#ss@h/db', 'http://[::1', 'mysql://x', 'https://keys.example/jwks.json', 'file:///etc/passwd',
];
/** Values carrying the marker, for the two variables whose values are secrets. */
const SECRET_VALUES = [MARK, `postgres://u:${MARK}@h/db`, `postgres://u:${MARK}#x@h/db`, `postgres://u:${MARK} x@h/db`, `not a url ${MARK}`, ` ${MARK}\n`, `${MARK}`.repeat(3), `http://[${MARK}`];
const SECRET_VARS = new Set(['RELAY_JWT_SECRET', 'DATABASE_URL', 'RELAY_METRICS_TOKEN']);

const valueArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...HOSTILE) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.oneof(fc.integer(), fc.double()).map(String) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('', ' ', '+', '-'), fc.nat(), fc.constantFrom('', 'kb', 'mb', 'GiB', ' days', ' hours', 'x')).map(([a, n, u]) => `${a}${n}${u}`) },
);

const configKey: Record<string, keyof RelayConfig> = {
  DATABASE_URL: 'databaseUrl', PORT: 'port', HOST: 'host', METRICS_PORT: 'metricsPort', METRICS_HOST: 'metricsHost', RELAY_METRICS_TOKEN: 'metricsToken', RELAY_JWT_SECRET: 'jwtSecret', RELAY_JWKS_URL: 'jwksUrl', RELAY_JWT_AUDIENCE: 'jwtAudience', RELAY_JWT_ISSUER: 'jwtIssuer',
  RELAY_TENANT_CLAIM: 'tenantClaim', RELAY_ROLE_CLAIM: 'roleClaim', RELAY_PRESENCE_CLAIM: 'presenceClaim', RELAY_PRESENCE_TTL_MS: 'presenceTtlMs', RELAY_ALLOWED_ORIGINS: 'allowedOrigins', RELAY_HISTORY_TX: 'historyTx', RELAY_HISTORY_BYTES: 'historyBytes', RELAY_RETENTION: 'retention',
  RELAY_PRUNE_INTERVAL_MS: 'pruneIntervalMs', RELAY_MAX_BACKPRESSURE: 'maxBackpressure', RELAY_MAX_SUBSCRIPTIONS: 'maxSubscriptions', RELAY_MAX_FRAME: 'maxFrame',
  RELAY_MAX_MESSAGE: 'maxMessage', RELAY_RATE_LIMIT: 'rateLimit', RELAY_IDLE_TIMEOUT: 'idleTimeout', RELAY_SERVER: 'server', RELAY_COMPRESSION: 'compression', RELAY_REUSEPORT: 'reusePort', RELAY_DATA_DIR: 'dataDir', LOG_LEVEL: 'logLevel', LOG_FORMAT: 'logFormat',
};
const INTEGERS = new Set(['PORT', 'METRICS_PORT', 'RELAY_HISTORY_TX', 'RELAY_PRUNE_INTERVAL_MS', 'RELAY_PRESENCE_TTL_MS', 'RELAY_MAX_SUBSCRIPTIONS', 'RELAY_RATE_LIMIT', 'RELAY_IDLE_TIMEOUT']);

const figures: Record<string, number> = {};
const accepted = { retention: new Set<string>(), tenantClaim: new Set<string>(), origins: new Set<string>() };

/** Loads `value` for `env` (as the variable, or as its flag) and returns what is wrong with the outcome, if anything. */
function judge(env: string, value: string, viaFlag: boolean, others: Record<string, string> = {}): { outcome: 'accepted' | 'refused'; problems: string[] } {
  const flag = flagFor(env);
  const what = `${viaFlag ? `${flag}=` : `${env}=`}${JSON.stringify(value).slice(0, 60)}`;
  const problems: string[] = [];
  const check = (ok: boolean, problem: string) => void (ok || problems.push(`${what}: ${problem}`));
  let config: RelayConfig;
  try {
    config = viaFlag ? loadConfig(others, [`${flag}=${value}`]) : loadConfig({ ...others, [env]: value });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    check(err instanceof ConfigError, `threw ${err instanceof Error ? err.name : typeof err} "${message.slice(0, 80)}" instead of a ConfigError`);
    check(message.startsWith(viaFlag ? `${flag} (${env}) ` : `${env} `), `the message does not start with the variable: "${message.slice(0, 80)}"`);
    check(!/[\r\n\u2028\u2029]/.test(message), 'the message spans lines');
    check(message.endsWith('.') && !/\.\s+[A-Z]/.test(message.replace(/; got .*\.$/s, '')), `not one sentence: "${message.slice(0, 120)}"`);
    for (const secret of [value, others.RELAY_JWT_SECRET, others.DATABASE_URL]) {
      if (secret === undefined || !secret.includes(MARK) || (secret === value && !SECRET_VARS.has(env))) continue;
      const shown = [message, (err as Error).stack ?? '', inspect(err, { depth: 5 }), JSON.stringify(err) ?? ''].join('\n');
      check(!shown.includes(MARK), `the error carries a secret (${shown.includes(`input: '`) ? 'in its enumerable "input" property' : 'in its text'})`);
    }
    return { outcome: 'refused', problems };
  }
  const v = config[configKey[env]!];
  const shown = `accepted as ${JSON.stringify(v)?.slice(0, 60)}`;
  check(Object.isFrozen(config), 'config not frozen');
  // an empty variable means "unset" (its default); an empty flag is a value like any other
  if (!viaFlag && value === '') return { outcome: 'accepted', problems };
  if (INTEGERS.has(env)) check(value.trim() !== '' && Number(value) === v && Number.isSafeInteger(v), `${shown}: a blank value is not a number`);
  if (env === 'RELAY_RETENTION') accepted.retention.add(v as string);
  if (env === 'RELAY_TENANT_CLAIM') accepted.tenantClaim.add(v as string);
  if (env === 'RELAY_ALLOWED_ORIGINS') for (const o of v as string[]) accepted.origins.add(o);
  if (['RELAY_HISTORY_BYTES', 'RELAY_MAX_BACKPRESSURE', 'RELAY_MAX_FRAME', 'RELAY_MAX_MESSAGE'].includes(env)) check(Number.isSafeInteger(v) && (v as number) >= 0, shown);
  if (env === 'DATABASE_URL') check(/^postgres(ql)?:$/.test(new URL(v as string).protocol), shown);
  if (env === 'RELAY_JWKS_URL') check(/^https?:$/.test(new URL(v as string).protocol), shown);
  if (env === 'RELAY_JWT_SECRET') check((v as string).length >= 32, shown);
  if (env === 'HOST' || env === 'METRICS_HOST') check(/^[\w.:-]+$/.test(v as string), shown);
  if (env === 'RELAY_METRICS_TOKEN') check(/^[\x21-\x7e]{16,}$/.test(v as string), shown);
  return { outcome: 'accepted', problems };
}

/** The first two problems of each kind (the text after the value), so one cause is not listed a hundred times. */
function distinct(problems: string[]): string[] {
  const seen = new Map<string, string[]>();
  for (const p of problems) {
    const kind = p.replace(/^[^:]*: /, '').replace(/"[^"]*"/g, '…').replace(/accepted as .*?:/, 'accepted as …:');
    const list = seen.get(kind) ?? [];
    if (list.length < 2) seen.set(kind, [...list, p]);
  }
  return [...seen.values()].flat();
}

describe.each(describeConfig().map((c) => [c.env, c.default ?? '(none)'] as const))('%s (default %s)', (env) => {
  it('takes a value that means what it says, or names itself in one ConfigError sentence', () => {
    const values = [...HOSTILE, ...(SECRET_VARS.has(env) ? SECRET_VALUES : []), ...fc.sample(valueArb, { numRuns: budget(200), ...fuzzSeed() })];
    const problems: string[] = [];
    for (const value of values) {
      for (const viaFlag of [false, true]) {
        const { outcome, problems: p } = judge(env, value, viaFlag);
        figures[outcome] = (figures[outcome] ?? 0) + 1;
        problems.push(...p);
      }
    }
    figures.variables = (figures.variables ?? 0) + 1;
    expect(distinct(problems)).toEqual([]);
  });

  it('never shows the database URL or the JWT secret in an error about it', () => {
    if (SECRET_VARS.has(env)) return;
    const others = { DATABASE_URL: `postgres://relay:${MARK}@127.0.0.1:5432/db`, RELAY_JWT_SECRET: `${MARK}-`.repeat(4) };
    const problems = HOSTILE.flatMap((value) => judge(env, value, false, others).problems.filter((p) => p.includes('secret')));
    expect(distinct(problems)).toEqual([]);
  });
});

describe('accepted values work where they are used', () => {
  it('every accepted RELAY_RETENTION is an interval Postgres takes (the pruner passes it as relay.prune($1::interval))', async () => {
    const values = [...accepted.retention];
    figures['retention values checked in Postgres'] = values.length;
    // one cast per value (pg_input_is_valid would do it at once, but only from PostgreSQL 16)
    const refused: string[] = [];
    for (const v of values) await db.query('select $1::interval', [v]).catch(() => refused.push(v));
    expect(refused).toEqual([]);
  });

  it('every accepted RELAY_TENANT_CLAIM reads a tenant from tokens, and lets all_tenants tokens in without one', () => {
    const broken: string[] = [];
    for (const claim of accepted.tenantClaim) {
      try {
        const withTenant = principalOf(JSON.parse(`{${JSON.stringify(claim)}:"acme","exp":9999999999}`), claim);
        const admin = principalOf(JSON.parse('{"all_tenants":true,"exp":9999999999}'), claim);
        if (withTenant.tenant !== 'acme' || !admin.allTenants) broken.push(claim);
      } catch (err) {
        broken.push(`${claim} (${(err as Error).message})`);
      }
    }
    figures['tenant claims checked with tokens'] = accepted.tenantClaim.size;
    expect(broken).toEqual([]);
  });

  it('every accepted RELAY_ALLOWED_ORIGINS entry is an origin a browser can send (it is compared as text with the Origin header)', () => {
    const never = [...accepted.origins].filter((o) => {
      try {
        return new URL(o).origin !== o;
      } catch {
        return true;
      }
    });
    figures['origins checked'] = accepted.origins.size;
    expect(never).toEqual([]);
  });
});

afterAll(() => reportFigures('config', figures));
