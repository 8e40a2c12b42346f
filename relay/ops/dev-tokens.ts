// Development tokens: the folder `npm start` keeps its state in, its HS256 secret, and minting a token with it (used by `pgrelay token` and the console's development mode).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SignJWT } from 'jose';
import { PgRelayError } from '../../client/shared/errors.js';
import { qualifyTable } from '../../client/shared/protocol.js';

/** The folder `npm start` keeps its state in (`RELAY_DATA_DIR`, default `./.pgrelay`), as the user would type it. */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.RELAY_DATA_DIR || '.pgrelay';
}

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
