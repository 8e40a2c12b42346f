// Issue 18: nothing the repository ships hands out a secret or a database: docker-compose.yml has no default secret or
// password and publishes no Postgres beyond 127.0.0.1, and the relay refuses every JWT secret the repository prints.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { freePort } from '../../client/shared/free-port.js';
import { leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { PUBLISHED_SECRETS } from '../ops/published-secrets.js';
import { relayEnv, repoRoot, runCli } from './support/cli-process.js';

type Compose = { services: Record<string, Record<string, any>> };

const composeText = readFileSync(path.join(repoRoot, 'docker-compose.yml'), 'utf8');
const compose = YAML.parse(composeText) as Compose;

// The parts of docker-compose.yml of 0.2.0 that issue 18 is about: each check below must flag them.
const OLD_COMPOSE = YAML.parse(`
services:
  postgres:
    image: postgres:16
    environment: { POSTGRES_USER: postgres, POSTGRES_PASSWORD: postgres, POSTGRES_DB: app }
    ports: ["5432:5432"]
  relay:
    environment:
      DATABASE_URL: postgres://postgres:postgres@postgres:5432/app
      RELAY_JWT_SECRET: \${RELAY_JWT_SECRET:-dev-only-secret-change-me-0123456789abcdef}
`) as Compose;

const SECRETISH = /PASSWORD|SECRET|TOKEN|_KEY$/i;
const INTERPOLATION = /\$\{([A-Za-z_]\w*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_]\w*)/g;
const REQUIRED = /^\$\{[A-Za-z_]\w*:\?[^}]+\}$/;

/** Every string in a parsed compose file, with where it is (`services.relay.environment.DATABASE_URL`). */
function strings(node: unknown, at = ''): Array<[string, string]> {
  if (typeof node === 'string') return [[at, node]];
  if (Array.isArray(node)) return node.flatMap((v, i) => strings(v, `${at}[${i}]`));
  if (node && typeof node === 'object') return Object.entries(node).flatMap(([k, v]) => strings(v, at ? `${at}.${k}` : k));
  return [];
}

/** A service's environment as a map (compose also takes a list of `KEY=value`). */
function environment(service: Record<string, any>): Record<string, string> {
  const env = service.environment ?? {};
  return Array.isArray(env) ? Object.fromEntries(env.map((e: string) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])) : env;
}

/** What gives a secret or a password away: a default, a literal, or a "missing" message that does not say how to make one. */
function secretProblems(file: Compose): string[] {
  const problems: string[] = [];
  for (const [at, value] of strings(file)) {
    for (const m of value.matchAll(INTERPOLATION)) {
      const name = m[1] ?? m[4]!;
      if (!SECRETISH.test(name)) continue;
      if (m[2] !== ':?') problems.push(`${at}: \${${name}} ${m[2]?.includes('-') ? 'has a default' : 'may be empty'}`);
      else if (!/openssl rand/.test(m[3]!)) problems.push(`${at}: the message for ${name} does not say how to make one`);
    }
  }
  for (const [name, service] of Object.entries(file.services)) {
    for (const [key, value] of Object.entries(environment(service))) {
      const at = `services.${name}.environment.${key}`;
      if (SECRETISH.test(key) && !REQUIRED.test(String(value))) problems.push(`${at}: not a required variable`);
      const password = /^\w+:\/\/[^:/@]+:([^@]*)@/.exec(String(value))?.[1];
      if (password !== undefined && !REQUIRED.test(password)) problems.push(`${at}: the URL's password is not a required variable`);
    }
  }
  return problems;
}

/** The host address of one port mapping (short syntax `[ip:][host:]container[/proto]`, a bare number, or long syntax). */
function hostIp(mapping: unknown): { ip: string; container: string } {
  if (typeof mapping === 'object' && mapping !== null) {
    const m = mapping as { host_ip?: string; target?: number | string };
    return { ip: m.host_ip ?? '0.0.0.0', container: String(m.target) };
  }
  const spec = String(mapping).replace(/\/\w+$/, '');
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(spec);
  const parts = v6 ? [v6[1]!, ...v6[2]!.split(':')] : spec.split(':');
  return { ip: parts.length === 3 ? parts[0]! : '0.0.0.0', container: parts.at(-1)! };
}

/** Postgres ports published beyond 127.0.0.1: every mapping of a postgres service, and any mapping onto 5432. */
function publishedPostgres(file: Compose): string[] {
  const problems: string[] = [];
  for (const [name, service] of Object.entries(file.services)) {
    const isPostgres = /^postgres(:|$)/.test(String(service.image ?? '')) || name === 'postgres';
    if (isPostgres && service.network_mode === 'host') problems.push(`services.${name}: network_mode host publishes every port`);
    (service.ports ?? []).forEach((p: unknown, i: number) => {
      const { ip, container } = hostIp(p);
      if ((isPostgres || /^5432(-|$)/.test(container)) && ip !== '127.0.0.1') problems.push(`services.${name}.ports[${i}] ${JSON.stringify(p)} publishes Postgres on ${ip}`);
    });
  }
  return problems;
}

/** Compose's interpolation of one value: `${X}`, `${X:-d}`, `${X-d}`, `${X:?msg}`, `${X?msg}`, `$X`, `$$`. */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\{([A-Za-z_]\w*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_]\w*)/g, (whole, braced?: string, op?: string, text?: string, bare?: string) => {
    if (whole === '$$') return '$';
    const name = braced ?? bare!;
    const set = op?.startsWith(':') ? Boolean(env[name]) : env[name] !== undefined;
    if (set) return env[name]!;
    if (op?.endsWith('?')) throw new Error(`required variable ${name} is missing a value: ${text}`);
    return op?.endsWith('-') ? text! : '';
  });
}

describe('docker-compose.yml (checked as compose reads it; `docker compose config` does the same where Docker is installed)', () => {
  it('has no default, literal or empty-allowed value for a secret or a password', () => {
    expect(secretProblems(compose)).toEqual([]);
    // the checks see what 0.2.0 shipped
    expect(secretProblems(OLD_COMPOSE)).toEqual([
      'services.relay.environment.RELAY_JWT_SECRET: ${RELAY_JWT_SECRET} has a default',
      'services.postgres.environment.POSTGRES_PASSWORD: not a required variable',
      'services.relay.environment.DATABASE_URL: the URL\'s password is not a required variable',
      'services.relay.environment.RELAY_JWT_SECRET: not a required variable',
    ]);
  });

  it('publishes no Postgres port beyond 127.0.0.1', () => {
    expect(publishedPostgres(compose)).toEqual([]);
    expect(publishedPostgres(OLD_COMPOSE)).toEqual(['services.postgres.ports[0] "5432:5432" publishes Postgres on 0.0.0.0']);
    const probe = (ports: unknown[]) => publishedPostgres({ services: { db: { image: 'postgres:16', ports } } });
    expect(probe(['127.0.0.1:5432:5432', { target: 5432, published: 5432, host_ip: '127.0.0.1' }])).toEqual([]);
    expect(probe(['5432', '0.0.0.0:5432:5432/tcp', '[::]:5432:5432', { target: 5432, published: 5432 }])).toHaveLength(4);
  });

  it('without .env, stops on each secret with a sentence saying how to make it; with the line docs/production.md shows, wires the two roles', () => {
    const missing = new Set<string>();
    for (const [, value] of strings(compose)) {
      try {
        interpolate(value, {});
      } catch (err) {
        missing.add((err as Error).message);
      }
    }
    expect([...missing].sort()).toEqual([
      'required variable POSTGRES_PASSWORD is missing a value: write .env once with the printf line at the top of docker-compose.yml (openssl rand -hex 24 makes one)',
      'required variable RELAY_DB_PASSWORD is missing a value: write .env once with the printf line at the top of docker-compose.yml (openssl rand -hex 24 makes one)',
      'required variable RELAY_JWT_SECRET is missing a value: write .env once with the printf line at the top of docker-compose.yml (openssl rand -hex 32 makes one)',
    ]);
    // the line that makes .env, in the compose file and the production guide alike (issue 26 moved it there from the README)
    const line = /^# {3}(printf .* > \.env)$/m.exec(composeText)?.[1];
    expect(line).toMatch(/openssl rand/);
    expect(readFileSync(path.join(repoRoot, 'docs/production.md'), 'utf8')).toContain(line);

    const env = { POSTGRES_PASSWORD: randomBytes(24).toString('hex'), RELAY_DB_PASSWORD: randomBytes(24).toString('hex'), RELAY_JWT_SECRET: randomBytes(32).toString('hex') };
    const resolved = (service: string) => Object.fromEntries(Object.entries(environment(compose.services[service]!)).map(([k, v]) => [k, interpolate(String(v), env)]));
    const owner = new URL(resolved('migrate').DATABASE_URL!);
    const relay = new URL(resolved('relay').DATABASE_URL!);
    const { command } = compose.services.migrate!;
    expect(command).toEqual(['migrate', '--relay-role', relay.username]);
    expect([owner.username, owner.password]).toEqual([resolved('postgres').POSTGRES_USER, env.POSTGRES_PASSWORD]);
    expect([relay.username, relay.password]).toEqual(['pgrelay', env.RELAY_DB_PASSWORD]);
    expect(resolved('migrate').RELAY_DB_PASSWORD).toBe(env.RELAY_DB_PASSWORD);
    expect(resolved('relay').RELAY_JWT_SECRET).toBe(env.RELAY_JWT_SECRET);
    expect(compose.services.relay!.depends_on.migrate.condition).toBe('service_completed_successfully');
  });
});

/** Literal JWT secrets a text shows: `RELAY_JWT_SECRET=…`, `RELAY_JWT_SECRET: …`, `${RELAY_JWT_SECRET:-…}`, `--jwt-secret …`. */
function literalSecrets(text: string): string[] {
  const found = [...text.matchAll(/(?:RELAY_JWT_SECRET(?:=|:\s+|:?-)|--jwt-secret[=\s]+)["'`]?([^\s"'`}]+)/g)].map((m) => m[1]!);
  return found.filter((v) => !/^[$<…(]/.test(v));
}

describe('secrets the repository prints', () => {
  it('every literal RELAY_JWT_SECRET in the docs, examples and compose file is one the relay refuses', () => {
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: repoRoot }).toString().split('\n')
      .filter((f) => /(\.md|\.ya?ml|\.sh|Dockerfile|\.env\.example)$/.test(f) && !f.includes('node_modules/'));
    expect(files).toEqual(expect.arrayContaining(['README.md', 'docker-compose.yml', 'docs/configuration.md']));
    const shown = files.flatMap((f) => literalSecrets(readFileSync(path.join(repoRoot, f), 'utf8')).map((s) => ({ file: f, secret: s })));
    expect(shown.filter((s) => s.secret.length >= 32 && !PUBLISHED_SECRETS.includes(s.secret))).toEqual([]);
    // the extraction sees the fallback of 0.2.0, and the list has it
    expect(literalSecrets(OLD_COMPOSE.services.relay!.environment.RELAY_JWT_SECRET)).toEqual(['dev-only-secret-change-me-0123456789abcdef']);
    expect(literalSecrets('RELAY_JWT_SECRET=abc-secret `--jwt-secret xyz` RELAY_JWT_SECRET=$(openssl rand -hex 32)')).toEqual(['abc-secret', 'xyz']);
    expect(PUBLISHED_SECRETS).toContain('dev-only-secret-change-me-0123456789abcdef');
  });

  describe('pgrelay start', () => {
    const db = useTestDatabase();
    leakGuard(() => db.name);

    it.each(PUBLISHED_SECRETS.map((s) => [s]))('with RELAY_JWT_SECRET=%s exits 1 with one sentence, before listening', async (secret) => {
      const p = runCli(['start'], relayEnv(db, await freePort(), { RELAY_JWT_SECRET: secret }));
      expect(await p.exited).toBe(1);
      expect(p.stderr().trim()).toBe(
        "pgrelay: RELAY_JWT_SECRET is an example printed in pgrelay's own files (docker-compose.yml of 0.2.0 and earlier), so anyone could sign tokens the relay accepts; make a secret of your own with: openssl rand -hex 32.");
      expect(p.output()).not.toMatch(/pgrelay listening on|database reachable/);
    }, 120_000);
  });
});
