// The DBA tools that are not about audit: pgrelay token mints what the relay accepts, pgrelay tail follows the stream from Postgres.
import { jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { Pruner } from '../pruner.js';
import { createLogger } from '../log.js';
import { createPool } from '../../db/kysely.js';
import { runCli, type CliProcess } from './support/cli-process.js';
import { SECRET } from './support/relay-harness.js';

const db = useTestDatabase();
const started: CliProcess[] = [];
beforeAll(async () => {
  await db.query(`create table orders (id serial primary key, tenant_id text not null, total int); select relay.watch('orders', 'tenant_id')`);
});
afterAll(async () => {
  for (const p of started) {
    p.signal('SIGKILL');
    await p.exited;
  }
});
leakGuard(() => db.name);

describe('pgrelay token', () => {
  it('mints an HS256 token with the tenant, tables and expiry asked for', async () => {
    const p = runCli(['token', '--tenant', 'acme', '--tables', 'orders,audit.events', '--ttl', '30m'], { RELAY_JWT_SECRET: SECRET, RELAY_JWT_AUDIENCE: 'dash' });
    expect(await p.exited).toBe(0);
    const { payload, protectedHeader } = await jwtVerify(p.output().trim(), new TextEncoder().encode(SECRET), { audience: 'dash' });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload).toMatchObject({ tenant_id: 'acme', tables: ['public.orders', 'audit.events'], aud: 'dash' });
    expect(payload.exp! - payload.iat!).toBe(1800);
  }, 60_000);

  it('refuses to guess', async () => {
    const p = runCli(['token'], { RELAY_JWT_SECRET: SECRET });
    expect(await p.exited).toBe(1);
    expect(p.output().trim()).toBe('pgrelay: Give --tenant <id> or --all-tenants.');
  }, 60_000);
});

describe('pgrelay tail', () => {
  it('prints one line per change of the tenant asked for, live from Postgres', async () => {
    const p = runCli(['tail', '--tenant', 'acme'], { DATABASE_URL: db.url });
    started.push(p);
    await p.waitFor(/following from #\d+/);
    await db.query(`insert into orders (tenant_id, total) values ('acme', 5), ('globex', 7)`);
    await db.query(`update orders set total = 6 where tenant_id = 'acme'`);
    const line = await p.waitFor(/public\.orders\s+update/);
    expect(line).toMatch(/^#\d+\s+\S+\+00:00\s+acme\s+public\.orders\s+update\s+\{"id":1\}\s+total: 5 → 6$/);
    expect(p.output()).toMatch(/acme\s+public\.orders\s+insert\s+\{"id":1\}/);
    expect(p.output()).not.toMatch(/globex/);
    p.signal('SIGINT');
    expect(await p.exited).toBe(0);
  }, 60_000);
});

describe('pruning', () => {
  it('runs on one relay at a time (advisory lock) and removes what RELAY_RETENTION says', async () => {
    await db.query(`insert into orders (tenant_id, total) select 'old', g from generate_series(1, 3) g`);
    await db.query(`insert into orders (tenant_id, total) values ('new', 1)`);
    await db.query(`update relay.transactions set committed_at = now() - interval '10 days' where seq < (select max(seq) from relay.transactions)`);
    const { rows } = await db.query(`select count(*)::int as n from relay.changes c join relay.transactions t using (txid) where t.seq < (select max(seq) from relay.transactions)`);
    const pool = createPool(db.url, { max: 1 });
    const other = await db.connect();
    const pruner = new Pruner(pool, '7 days', 60_000, createLogger('silent'));
    try {
      // another relay is pruning: this one skips
      await other.query('select pg_advisory_lock(7242, 2)');
      expect(await pruner.runOnce()).toBe(0);
      const { rows: still } = await db.query(`select count(*)::int as n from relay.changes`);
      expect(still[0]!.n).toBeGreaterThanOrEqual(rows[0]!.n);
      await other.query('select pg_advisory_unlock(7242, 2)');
      expect(await pruner.runOnce()).toBe(rows[0]!.n);
      expect(await pruner.runOnce()).toBe(0);
    } finally {
      await other.end();
      await pool.end();
    }
  });
});
