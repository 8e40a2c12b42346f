// The DBA tools: pgrelay watch/watched/audit on a known history, and relay.prune.
import { beforeAll, describe, expect, it } from 'vitest';
import { cliOutput } from '../../relay/__tests__/support/cli-process.js';
import { leakGuard, useTestDatabase } from '../testing/index.js';

const db = useTestDatabase();
leakGuard(() => db.name);

/** A DBA command on this file's database, run to its exit. */
const cli = (args: string[]) => cliOutput(args, { DATABASE_URL: db.url });

beforeAll(async () => {
  await db.query(`create table invoices (id int primary key, tenant_id text not null, amount numeric(8,2), pin text)`);
});

describe('pgrelay watch / watched / audit', () => {
  it('watches through the CLI, and a wrong column name lists the columns there are (issue 26)', async () => {
    expect(await cli(['watch', 'invoices', '--tenant-column', 'tenant_id', '--exclude', 'pin'])).toEqual({ code: 0, out: 'watching invoices\n' });
    const bad = await cli(['watch', 'invoices', '--tenant-column', 'nope']);
    expect(bad).toEqual({ code: 1, out: 'pgrelay: Table public.invoices has no column "nope"; its columns are id, tenant_id, amount, pin: give the one that holds the tenant to --tenant-column, or --no-tenant for a table whose rows belong to no tenant.\n' });
    const listed = await cli(['watched']);
    expect(listed.out).toMatch(/public\.invoices\s+tenant_id\s+id\s+pin\s+yes\s+-\s+id integer, tenant_id text, amount numeric\(8,2\)$/m);
  }, 120_000);

  it('prints a known history as NDJSON and as a table, filtered', async () => {
    const c = await db.connect({ application_name: 'billing' });
    await c.query(`begin; set local relay.actor = 'alice'; set local relay.origin = 'web-1';
      insert into invoices values (1, 'acme', 10.50, '1234'), (2, 'globex', 20, '9999'); commit`);
    await c.query(`update invoices set amount = 11 where id = 1`);
    await c.query(`delete from invoices where id = 2`);
    await c.end();
    await db.tick();
    const { rows } = await db.query(`select current_user as u`);
    const user = rows[0]!.u as string;

    const json = await cli(['audit', '--json']);
    expect(json.code).toBe(0);
    const entries = json.out.trim().split('\n').map((l) => JSON.parse(l));
    const base = { db_user: user, application_name: 'billing', table: 'public.invoices' };
    expect(entries).toEqual([
      { ...base, seq: 1, committed_at: expect.stringMatching(/Z$/), tenant: 'acme', op: 'insert', pk: { id: 1 }, row: { id: 1, tenant_id: 'acme', amount: '10.50' }, old: null, actor: 'alice', origin: 'web-1' },
      { ...base, seq: 1, committed_at: expect.any(String), tenant: 'globex', op: 'insert', pk: { id: 2 }, row: { id: 2, tenant_id: 'globex', amount: '20.00' }, old: null, actor: 'alice', origin: 'web-1' },
      { ...base, seq: 2, committed_at: expect.any(String), tenant: 'acme', op: 'update', pk: { id: 1 }, row: { id: 1, tenant_id: 'acme', amount: '11.00' }, old: { amount: '10.50' }, actor: null, origin: null },
      { ...base, seq: 3, committed_at: expect.any(String), tenant: 'globex', op: 'delete', pk: { id: 2 }, row: { id: 2, tenant_id: 'globex', amount: '20.00' }, old: null, actor: null, origin: null },
    ]);
    expect(Object.keys(entries[0]).sort()).toEqual(['actor', 'application_name', 'committed_at', 'db_user', 'old', 'op', 'origin', 'pk', 'row', 'seq', 'table', 'tenant']);

    const acme = await cli(['audit', '--json', '--tenant', 'acme', '--table', 'invoices']);
    expect(acme.out.trim().split('\n').map((l) => JSON.parse(l).seq)).toEqual([1, 2]);
    const future = await cli(['audit', '--json', '--since', '2999-01-01']);
    expect(future.out).toBe('');
    const recent = await cli(['audit', '--json', '--since', '1h', '--limit', '1']);
    expect(recent.out.trim().split('\n').map((l) => JSON.parse(l).op)).toEqual(['delete']);

    const table = await cli(['audit', '--tenant', 'acme']);
    const lines = table.out.trim().split('\n');
    expect(lines[0]).toMatch(/^\s*seq\s+committed_at\s+tenant\s+table\s+op\s+pk\s+changed\s+db_user\s+application_name\s+client_addr\s+actor\s+origin$/);
    expect(lines[1]).toMatch(/^\s*1 \s+\S+Z\s+acme\s+public\.invoices\s+insert\s+\{"id":1\}\s+-\s+\S+\s+billing\s+\S+\s+alice\s+web-1$/);
    expect(lines[2]).toMatch(/^\s*2 \s+\S+Z\s+acme\s+public\.invoices\s+update\s+\{"id":1\}\s+amount\s+\S+\s+billing\s+\S+\s+-\s+-$/);

    expect(await cli(['audit', '--since', 'yesterday-ish'])).toEqual({ code: 1, out: 'pgrelay: --since takes a duration such as 30m, 1h, 2d or a date such as 2026-11-01; got "yesterday-ish".\n' });
  }, 240_000); // seven CLI processes: slow when the whole suite loads the machine
});

describe('relay.prune', () => {
  it('removes history older than keep, in batches, never the newest transaction, and records the horizon', async () => {
    await db.query(`insert into invoices select g, 't', g, null from generate_series(100, 130) g`);
    for (let i = 0; i < 5; i++) await db.query(`update invoices set amount = amount + 1 where id = 100`);
    await db.tick();
    const { rows: before } = await db.query(`select max(seq)::int as max, count(*)::int as n from relay.transactions`);
    // age everything but the last two transactions
    await db.query(`update relay.transactions set committed_at = now() - interval '8 days' where seq <= $1`, [before[0]!.max - 2]);
    const { rows: counted } = await db.query(`select count(*)::int as n from relay.changes c join relay.transactions t using (txid) where t.seq <= $1`, [before[0]!.max - 2]);
    const { rows } = await db.query(`select relay.prune('7 days', 2) as removed`);
    expect(Number(rows[0]!.removed)).toBe(counted[0]!.n);
    const { rows: after } = await db.query(`select min(seq)::int as min, count(*)::int as n from relay.transactions`);
    expect(after[0]).toEqual({ min: before[0]!.max - 1, n: 2 });
    expect((await db.query(`select pruned_through::int as p from relay.state`)).rows[0]!.p).toBe(before[0]!.max - 2);
    // everything old: the newest transaction stays
    await db.query(`update relay.transactions set committed_at = now() - interval '30 days'`);
    await db.query(`select relay.prune('7 days')`);
    expect((await db.query(`select seq::int from relay.transactions`)).rows).toEqual([{ seq: before[0]!.max }]);
    expect((await db.query(`select relay.position()::int as p`)).rows[0]!.p).toBe(before[0]!.max);
  });
});
