// Migrations apply once, apply twice without change, reverse cleanly, and tolerate two relays starting together.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migrate } from '../migrate.js';
import { withDatabase } from '../testing/index.js';
import { randomBytes } from 'node:crypto';

const name = `pgrelay_mig_${randomBytes(4).toString('hex')}`;
let url = '';

async function q(sql: string): Promise<any[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  url = withDatabase(inject('pgAdminUrl'), name);
});
afterAll(async () => {
  const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await admin.connect();
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.end();
});

describe('migrations', () => {
  it('two relays migrating at once both succeed, and the schema is applied once', async () => {
    const [a, b] = await Promise.all([migrate(url), migrate(url)]);
    expect([...a, ...b]).toHaveLength(1);
    expect((await q(`select count(*)::int as n from relay.migrations`))[0].n).toBe(1);
  });

  it('applying again changes nothing', async () => {
    expect(await migrate(url)).toEqual([]);
  });

  it('reverse leaves the application tables alone and removes capture, then applies again', async () => {
    await q(`create table things (id int primary key, t text); select relay.watch('things', 't'); insert into things values (1, 'a')`);
    expect((await q(`select count(*)::int as n from relay.changes`))[0].n).toBe(1);
    const reversed = await migrate(url, { direction: 'down' });
    expect(reversed).toHaveLength(1);
    expect(await q(`select tgname from pg_trigger where tgrelid = 'things'::regclass and not tgisinternal`)).toEqual([]);
    expect(await q(`select count(*)::int as n from pg_class where relnamespace = 'relay'::regnamespace and relname <> 'migrations' and relname not like 'migrations%'`)).toEqual([{ n: 0 }]);
    await q(`insert into things values (2, 'b')`);
    expect((await q(`select count(*)::int as n from things`))[0].n).toBe(2);
    expect(await migrate(url)).toHaveLength(1);
    await q(`select relay.watch('things', 't'); insert into things values (3, 'c')`);
    expect((await q(`select count(*)::int as n from relay.changes`))[0].n).toBe(1);
  });
});
