// Migrations apply once, apply twice without change, reverse cleanly, and tolerate two relays starting together.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { migrate, migrationsDir } from '../migrate.js';
import { withDatabase } from '../testing/index.js';
import { randomBytes } from 'node:crypto';

const name = `pgrelay_mig_${randomBytes(4).toString('hex')}`;
let url = '';
const COUNT = readdirSync(migrationsDir()).filter((f) => f.endsWith('.sql')).length;

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
    expect(COUNT).toBeGreaterThan(5);
    expect([...a, ...b]).toHaveLength(COUNT);
    expect((await q(`select count(*)::int as n from relay.migrations`))[0].n).toBe(COUNT);
    // 011's helper that builds relay.capture and relay.tick from 0.2's bodies lives only for that migration
    expect(await q(`select to_regprocedure('relay._edit(text,text,text,text)') is null as gone`)).toEqual([{ gone: true }]);
  });

  it('applying again changes nothing', async () => {
    expect(await migrate(url)).toEqual([]);
  });

  it('reverse leaves the application tables alone and removes capture, then applies again', async () => {
    await q(`create table things (id int primary key, t text); select relay.watch('things', 't'); insert into things values (1, 'a')`);
    expect((await q(`select count(*)::int as n from relay.changes`))[0].n).toBe(1);
    const reversed = await migrate(url, { direction: 'down' });
    expect(reversed).toHaveLength(COUNT);
    expect(await q(`select tgname from pg_trigger where tgrelid = 'things'::regclass and not tgisinternal`)).toEqual([]);
    expect(await q(`select count(*)::int as n from pg_class where relnamespace = 'relay'::regnamespace and relname <> 'migrations' and relname not like 'migrations%'`)).toEqual([{ n: 0 }]);
    await q(`insert into things values (2, 'b')`);
    expect((await q(`select count(*)::int as n from things`))[0].n).toBe(2);
    expect(await migrate(url)).toHaveLength(COUNT);
    await q(`select relay.watch('things', 't'); insert into things values (3, 'c')`);
    expect((await q(`select count(*)::int as n from relay.changes`))[0].n).toBe(1);
  });

  it("refuses, with the way out, a database that has pgrelay 0.1's capture schema", async () => {
    const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
    await admin.connect();
    const old = `${name}_old`;
    await admin.query(`create database ${old}`);
    try {
      const c = new pg.Client({ connectionString: withDatabase(inject('pgAdminUrl'), old) });
      await c.connect();
      await c.query(`create schema relay; create table relay.migrations (id serial primary key, name varchar(255) not null, run_on timestamp not null);
                     insert into relay.migrations (name, run_on) values ('1700000000001_relay-capture', now())`);
      await c.end();
      await expect(migrate(withDatabase(inject('pgAdminUrl'), old))).rejects.toMatchObject({ code: 'old_schema', message: expect.stringContaining('drop schema relay cascade') });
    } finally {
      await admin.query(`drop database if exists ${old} with (force)`);
      await admin.end();
    }
  });
});
