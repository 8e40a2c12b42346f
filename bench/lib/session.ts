// What every benchmark shares: the run's Postgres and secret, tokens per tenant, and one target at a time in a fresh database.
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { BenchPostgres } from './postgres.js';
import { prepareDatabase, startTarget, type StartOptions, type TargetName, type TargetServer } from './targets.js';

export interface RunContext {
  pg: BenchPostgres;
  /** HS256 secret shared by the three servers and the token minting. */
  secret: string;
  /** Echo server output to stderr. */
  echo: boolean;
  /** % of all CPUs busy before the run started, with nothing of ours running. */
  background: number;
}

export function newSecret(): string {
  return randomBytes(32).toString('hex');
}

/** One token per tenant (`t0`…), claim `tenant_id`, valid for six hours. */
export async function tokensFor(secret: string, tenants: number): Promise<Record<string, string>> {
  const key = new TextEncoder().encode(secret);
  const out: Record<string, string> = {};
  for (let i = 0; i < tenants; i++) {
    out[`t${i}`] = await new SignJWT({ tenant_id: `t${i}` }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('6h').sign(key);
  }
  return out;
}

export interface TargetSession {
  server: TargetServer;
  databaseUrl: string;
}

/** Fresh database with `orders` and the target's capture, the server started on it; both gone afterwards, whatever happens. */
export async function withTarget<T>(
  ctx: RunContext,
  target: TargetName,
  o: Omit<StartOptions, 'databaseUrl' | 'jwtSecret'>,
  fn: (s: TargetSession) => Promise<T>,
): Promise<T> {
  const name = `pgrelay_bench_${target.replace(/-/g, "_")}`;
  const databaseUrl = await ctx.pg.createDatabase(name);
  try {
    await prepareDatabase(databaseUrl, target);
    const server = await startTarget(target, { ...o, databaseUrl, jwtSecret: ctx.secret, echo: ctx.echo });
    try {
      return await fn({ server, databaseUrl });
    } finally {
      await server.stop();
    }
  } finally {
    await ctx.pg.dropDatabase(name);
  }
}
