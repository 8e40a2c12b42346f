// The DBA tools that are not about audit: pgrelay token mints what the relay accepts, pgrelay tail follows the stream from Postgres.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { jwtVerify } from 'jose';
import { freePort } from '../../client/shared/free-port.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { createOrders, leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { Pruner } from '../ops/pruner.js';
import { PRUNE_LOCK } from '../../client/shared/lock-keys.js';
import { createLogger } from '../ops/log.js';
import { createPool } from '../../db/kysely.js';
import { useCliProcesses } from './support/cli-process.js';
import { SECRET } from './support/relay-harness.js';

const db = useTestDatabase();
const cli = useCliProcesses();
beforeAll(async () => {
  await createOrders(db, { columns: { total: 'int' } });
});
leakGuard(() => db.name);

describe('pgrelay token', () => {
  it('mints an HS256 token with the tenant, tables and expiry asked for', async () => {
    const p = cli.run(['token', '--tenant', 'acme', '--tables', 'orders,audit.events', '--ttl', '30m'], { RELAY_JWT_SECRET: SECRET, RELAY_JWT_AUDIENCE: 'dash' });
    expect(await p.exited).toBe(0);
    const { payload, protectedHeader } = await jwtVerify(p.output().trim(), new TextEncoder().encode(SECRET), { audience: 'dash' });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload).toMatchObject({ tenant_id: 'acme', tables: ['public.orders', 'audit.events'], aud: 'dash' });
    expect(payload.exp! - payload.iat!).toBe(1800);
  }, 60_000);

  it('issue 14: --sub and --name say who the token is in presence (the display name under RELAY_PRESENCE_CLAIM)', async () => {
    const p = cli.run(['token', '--tenant', 'acme', '--sub', 'u-ada', '--name', 'Ada Lovelace'], { RELAY_JWT_SECRET: SECRET, RELAY_PRESENCE_CLAIM: 'display' });
    expect(await p.exited).toBe(0);
    const { payload } = await jwtVerify(p.output().trim(), new TextEncoder().encode(SECRET));
    expect(payload).toMatchObject({ tenant_id: 'acme', sub: 'u-ada', display: 'Ada Lovelace' });
    const nameOnly = cli.run(['token', '--tenant', 'acme', '--name', 'Ada'], { RELAY_JWT_SECRET: SECRET });
    expect(await nameOnly.exited).toBe(1);
    expect(nameOnly.output().trim()).toBe('pgrelay: --name is the display name presence shows next to --sub: give --sub <id> too.');
  }, 60_000);

  it('refuses to guess', async () => {
    const p = cli.run(['token'], { RELAY_JWT_SECRET: SECRET });
    expect(await p.exited).toBe(1);
    expect(p.output().trim()).toBe('pgrelay: Give --tenant <id> or --all-tenants.');
  }, 60_000);
});

describe('pgrelay tail', () => {
  it('prints one line per change of the tenant asked for, live from Postgres', async () => {
    const p = cli.run(['tail', '--tenant', 'acme'], { DATABASE_URL: db.url });
    await p.waitFor(/following from #\d+/);
    await db.query(`insert into orders (tenant_id, total) values ('acme', 5), ('globex', 7)`);
    await db.query(`update orders set total = 6 where tenant_id = 'acme'`);
    const line = await p.waitFor(/public\.orders\s+update/);
    expect(line).toMatch(/^#\d+\s+\S+Z\s+acme\s+public\.orders\s+update\s+\{"id":1\}\s+db_user=\S+\s+total: 5 → 6$/);
    expect(p.output()).toMatch(/acme\s+public\.orders\s+insert\s+\{"id":1\}/);
    expect(p.output()).not.toMatch(/globex/);
    p.signal('SIGINT');
    expect(await p.exited).toBe(0);
  }, 60_000);

  it('issue 12: shows who made each change (db_user, app, actor, origin), in UTC with a Z, and --since replays from a seq', async () => {
    const c = await db.connect({ application_name: 'caja-2' });
    await c.query(`begin; set local relay.actor = 'alice'; set local relay.origin = 'web-1'; insert into orders (tenant_id, total) values ('who', 1); commit`);
    await c.end();
    await db.tick();
    const { rows } = await db.query(`select max(seq)::int as seq, current_user as u from relay.transactions`);
    const p = cli.run(['tail', '--tenant', 'who', '--since', String(rows[0]!.seq - 1)], { DATABASE_URL: db.url });
    const line = await p.waitFor(/public\.orders\s+insert/);
    expect(line).toMatch(new RegExp(`^#${rows[0]!.seq}\\s+\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z\\s+who\\s+public\\.orders\\s+insert\\s+\\{"id":\\d+\\}\\s+db_user=${rows[0]!.u} app=caja-2 actor=alice origin=web-1\\s+\\{`));
    p.signal('SIGINT');
    expect(await p.exited).toBe(0);
  }, 60_000);

  it('issue 12: misses nothing written while it starts', async () => {
    const p = cli.run(['tail', '--tenant', 'early'], { DATABASE_URL: db.url });
    // written as soon as the command runs, long before it has connected and listens
    await p.waitFor(/connecting to /);
    await db.query(`insert into orders (tenant_id, total) values ('early', 1)`);
    await p.waitFor(/following from #\d+/);
    await db.query(`insert into orders (tenant_id, total) values ('early', 2)`);
    await p.waitFor(/"total":2/);
    expect(p.stdout()).toMatch(/early\s+public\.orders\s+insert\s+.*"total":1/);
    p.signal('SIGINT');
    expect(await p.exited).toBe(0);
  }, 60_000);
});

describe('issue 12: every DBA command finds the embedded database of npm start', () => {
  it('reads <RELAY_DATA_DIR>/database-url when DATABASE_URL is not set, and says so in one stderr line', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pgrelay-state-'));
    try {
      await writeFile(path.join(dir, 'database-url'), `${db.url}\n`);
      await writeFile(path.join(dir, 'dev-jwt-secret'), `${SECRET}\n`);
      await db.query(`create table found (id int primary key, t text not null)`);
      const env = { RELAY_DATA_DIR: dir };
      const notice = `pgrelay: DATABASE_URL is not set; using the embedded database of npm start (${path.join(dir, 'database-url')})\n`;
      const run = async (args: string[]) => {
        const p = cli.run(args, env);
        return { code: await p.exited, stdout: p.stdout(), stderr: p.stderr() };
      };
      const [migrate, watch] = await Promise.all([run(['migrate']), run(['watch', 'found', '--tenant-column', 't'])]);
      expect(migrate).toEqual({ code: 0, stdout: 'pgrelay migrations already up to date\n', stderr: notice });
      expect(watch).toEqual({ code: 0, stdout: 'watching found\n', stderr: notice });
      const [watched, audit, token] = await Promise.all([run(['watched']), run(['audit', '--json', '--table', 'found']), run(['token', '--tenant', 'a'])]);
      expect(watched).toMatchObject({ code: 0, stdout: expect.stringMatching(/public\.found\s+t\s+id/), stderr: notice });
      expect(audit).toEqual({ code: 0, stdout: '', stderr: notice });
      expect(token).toMatchObject({ code: 0, stderr: `pgrelay: RELAY_JWT_SECRET is not set; signing with the development secret of npm start (${path.join(dir, 'dev-jwt-secret')})\n` });
      await jwtVerify(token.stdout.trim(), new TextEncoder().encode(SECRET));
      expect(await run(['unwatch', 'found'])).toMatchObject({ code: 0, stderr: notice });

      const tail = cli.run(['tail'], env);
      await tail.waitFor(/following from/);
      tail.signal('SIGINT');
      expect(await tail.exited).toBe(0);
      expect(tail.stderr()).toContain(notice);

      // the embedded database is not running: the message says where the URL came from and what to do
      await writeFile(path.join(dir, 'database-url'), `postgres://u:p@127.0.0.1:${await freePort()}/pgrelay\n`);
      const down = await run(['watched']);
      expect(down.code).toBe(1);
      expect(down.stderr).toMatch(/^pgrelay: DATABASE_URL is not set; using the embedded database of npm start \(.*\)\npgrelay: Cannot connect to the database at 127\.0\.0\.1:\d+\/pgrelay: connection refused \(is Postgres running there\?\); that is the embedded database of npm start \(.*database-url\): is npm start running\?\n$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
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
      await other.query('select pg_advisory_lock($1, $2)', [...PRUNE_LOCK]);
      expect(await pruner.runOnce()).toBe(0);
      const { rows: still } = await db.query(`select count(*)::int as n from relay.changes`);
      expect(still[0]!.n).toBeGreaterThanOrEqual(rows[0]!.n);
      await other.query('select pg_advisory_unlock($1, $2)', [...PRUNE_LOCK]);
      expect(await pruner.runOnce()).toBe(rows[0]!.n);
      expect(await pruner.runOnce()).toBe(0);
    } finally {
      await other.end();
      await pool.end();
    }
  });
});
