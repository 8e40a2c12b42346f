// `pgrelay token --tenant <id> [--tables a,b] [--all-tenants] [--sub <id> [--name <text>]] [--ttl 1h]`: mints an HS256 development token.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SignJWT } from 'jose';
import { qualifyTable } from '../../client/protocol.js';
import { PgRelayError } from '../../db/errors.js';
import { parseArgs } from './args.js';
import { stateDir } from './database-url.js';

const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** The secret: RELAY_JWT_SECRET, else the dev secret `npm start` keeps in RELAY_DATA_DIR (said on stderr, in one line). */
export function signingSecret(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RELAY_JWT_SECRET) return env.RELAY_JWT_SECRET;
  const file = path.join(stateDir(env), 'dev-jwt-secret');
  if (existsSync(file)) {
    process.stderr.write(`pgrelay: RELAY_JWT_SECRET is not set; signing with the development secret of npm start (${file})\n`);
    return readFileSync(file, 'utf8').trim();
  }
  throw new PgRelayError('bad_config', `Set RELAY_JWT_SECRET (or run npm start once, which creates a development secret in ${file}).`);
}

export async function mintToken(claims: { tenant?: string; tables?: string[]; allTenants?: boolean; sub?: string; name?: string; ttlSeconds: number }, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const tenantClaim = env.RELAY_TENANT_CLAIM ?? 'tenant_id';
  const presenceClaim = env.RELAY_PRESENCE_CLAIM ?? 'name';
  const jwt = new SignJWT({
    ...(claims.tenant !== undefined ? { [tenantClaim]: claims.tenant } : {}),
    ...(claims.tables ? { tables: claims.tables.map(qualifyTable) } : {}),
    ...(claims.allTenants ? { all_tenants: true } : {}),
    // who the token is in presence
    ...(claims.sub !== undefined ? { sub: claims.sub } : {}),
    ...(claims.name !== undefined ? { [presenceClaim]: claims.name } : {}),
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + claims.ttlSeconds);
  if (env.RELAY_JWT_AUDIENCE) jwt.setAudience(env.RELAY_JWT_AUDIENCE);
  if (env.RELAY_JWT_ISSUER) jwt.setIssuer(env.RELAY_JWT_ISSUER);
  return jwt.sign(new TextEncoder().encode(signingSecret(env)));
}

export async function tokenCommand(argv: readonly string[]): Promise<void> {
  const { options } = parseArgs(argv, ['tenant', 'tables', 'ttl', 'sub', 'name'], ['all-tenants']);
  const tenant = options.get('tenant');
  const allTenants = options.has('all-tenants');
  if (typeof tenant !== 'string' && !allTenants) throw new PgRelayError('bad_arguments', 'Give --tenant <id> or --all-tenants.');
  const ttl = String(options.get('ttl') ?? '1h');
  const m = /^(\d+)([smhd])$/.exec(ttl);
  if (!m) throw new PgRelayError('bad_arguments', `--ttl takes a duration such as 30m, 1h or 7d; got ${JSON.stringify(ttl)}.`);
  const [sub, name] = [options.get('sub'), options.get('name')];
  if (name !== undefined && sub === undefined) throw new PgRelayError('bad_arguments', '--name is the display name presence shows next to --sub: give --sub <id> too.');
  const tables = typeof options.get('tables') === 'string' ? String(options.get('tables')).split(',').map((t) => t.trim()).filter(Boolean) : undefined;
  const token = await mintToken({
    ...(typeof tenant === 'string' ? { tenant } : {}),
    ...(tables ? { tables } : {}),
    allTenants,
    ...(typeof sub === 'string' ? { sub } : {}),
    ...(typeof name === 'string' ? { name } : {}),
    ttlSeconds: Number(m[1]) * units[m[2]!]!,
  });
  process.stdout.write(`${token}\n`);
}
