// Issue 18: the relay runs as a login role in relay_reader, whose privileges are exactly what the relay uses; `pgrelay
// start` as that role starts without migrating, and warns as a superuser; `pgrelay migrate --relay-role` makes the role.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../client/shared/free-port.js';
import { scramVerifier } from '../../db/relay-role.js';
import { createTestDatabase } from '../../db/testing/database.js';
import { createOrders, leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { relayEnv, runCli, useCliProcesses } from './support/cli-process.js';
import { connect, startTestRelay, token, type TestRelay } from './support/relay-harness.js';

const db = useTestDatabase();
const role = inject('pgRelayRole').user;
let relay: TestRelay;

beforeAll(async () => {
  await createOrders(db, { id: 'int primary key', columns: { total: 'int' } });
  await db.query(`
    -- a schema the relay's role has no USAGE on: it must still snapshot and stream the table
    create schema sales;
    create table sales.invoices (id int primary key, tenant_id text not null, amount numeric);
    select relay.watch('sales.invoices', 'tenant_id');
    insert into orders values (1, 'acme', 10);
    insert into sales.invoices values (1, 'acme', 1.50), (2, 'globex', 2.50);
  `);
  relay = await startTestRelay(db);
});
leakGuard(() => db.name);

/** Runs `fn` on a connection as the relay's role (the one every test relay uses). */
async function asRelayRole<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await db.connect({ connectionString: db.relayUrl });
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** The SQLSTATE a statement fails with ('' when it succeeds). */
const sqlState = (c: pg.Client, sql: string) => c.query(sql).then(() => '', (err: { code?: string }) => err.code ?? '?');

describe('the relay role', () => {
  it('is what the test relays connect as: a login role in relay_reader, no superuser, no other power', async () => {
    const { rows: [r] } = await db.query<Record<string, boolean>>(
      `select rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication, rolcanlogin, pg_has_role($1, 'relay_reader', 'member') as reader
       from pg_roles where rolname = $1`, [role]);
    expect(r).toEqual({ rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolbypassrls: false, rolreplication: false, rolcanlogin: true, reader: true });
    // every session of the running relay (pool, LISTEN, ticker) is that role
    const { rows } = await db.query<{ usename: string; application_name: string }>(
      `select usename, application_name from pg_stat_activity where datname = current_database() and application_name like 'pgrelay%' order by application_name`);
    expect(rows.map((s) => s.application_name)).toEqual(expect.arrayContaining(['pgrelay-listener']));
    expect(new Set(rows.map((s) => s.usename))).toEqual(new Set([role]));
  });

  it('has exactly the privileges the relay uses on schema relay, and nothing else there', async () => {
    const grants = await asRelayRole(async (c) => {
      const { rows: relations } = await c.query<{ name: string; privileges: string[] }>(`
        select c.relname as name,
               case when c.relkind = 'S'
                    then array(select p from unnest(array['USAGE', 'SELECT', 'UPDATE']) p where has_sequence_privilege(c.oid, p))
                    else array(select p from unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
                               where has_table_privilege(c.oid, p)) end as privileges
        from pg_class c where c.relnamespace = 'relay'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')`);
      const { rows: functions } = await c.query<{ f: string }>(
        `select p.oid::regprocedure::text as f from pg_proc p where p.pronamespace = 'relay'::regnamespace and has_function_privilege(p.oid, 'EXECUTE')`);
      const { rows: [schema] } = await c.query(`select has_schema_privilege('relay', 'USAGE') as usage, has_schema_privilege('relay', 'CREATE') as create`);
      return {
        relations: Object.fromEntries(relations.filter((r) => r.privileges.length > 0).map((r) => [r.name, r.privileges]).sort()),
        unreadable: relations.filter((r) => r.privileges.length === 0).map((r) => r.name).sort(),
        functions: functions.map((f) => f.f).sort(),
        schema,
      };
    });
    expect(grants.relations).toEqual({
      changes: ['SELECT'], migrations: ['SELECT'], state: ['SELECT'], tenant_seqs: ['SELECT'], transactions: ['SELECT'], watched: ['SELECT'],
    });
    // issue 14: presence is written and read through the relay.presence_* functions only
    expect(grants.unreadable).toEqual(expect.arrayContaining(['audit', 'log', 'ticker', 'watches', 'presence', 'presence_relays']));
    expect(grants.functions).toEqual([
      'relay."position"()', 'relay._interval_json(jsonb)', 'relay._numeric_json(jsonb)', 'relay._render(oid,jsonb)',
      'relay._streamed(oid,smallint[])', 'relay._tstz_json(jsonb)', 'relay.presence_end(uuid)', 'relay.presence_members(text[])',
      'relay.presence_sweep()', 'relay.presence_sync(uuid,integer,jsonb,jsonb,boolean)', 'relay.prune(interval,integer)',
      'relay.snapshot(regclass,text,jsonb)', 'relay.tick(pg_snapshot,integer,integer)', 'relay.ticker_sleep(boolean,integer)',
    ]);
    expect(grants.schema).toEqual({ usage: true, create: false });
  });

  it('cannot SELECT a watched table, nor write to any table of relay, nor change what is watched', async () => {
    const relayTables = (await db.query<{ name: string }>(
      `select format('%I.%I', n.nspname, c.relname) as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = 'relay' and c.relkind in ('r', 'p') order by 1`)).rows.map((r) => r.name);
    expect(relayTables).toEqual(expect.arrayContaining(['relay.log', 'relay.transactions', 'relay.ticker', 'relay.watches', 'relay.presence', 'relay.presence_relays']));
    const refused = await asRelayRole(async (c) => {
      const out: Record<string, string> = {};
      for (const sql of [
        'select * from orders', 'select * from public.orders', 'select * from sales.invoices', 'update orders set total = 0',
        "select relay.watch('orders', 'tenant_id')", "select relay.unwatch('orders')", 'select relay._build_render()',
        'create table relay.mine (id int)',
        // presence's helper, which would let the role send notifications the relays trust
        "select relay._presence_notify(null, '{acme}')",
        'select * from relay.presence', 'select * from relay.presence_relays',
        ...relayTables.flatMap((t) => [`insert into ${t} default values`, `delete from ${t}`, `truncate ${t}`]),
      ]) out[sql] = await sqlState(c, sql);
      return out;
    });
    // 42501 insufficient_privilege, every one (not a constraint or a missing table standing in for it)
    expect(Object.entries(refused).filter(([, code]) => code !== '42501')).toEqual([]);
  });

  it('issue 14: writes presence only through SECURITY DEFINER functions with a pinned search_path', async () => {
    const { rows } = await db.query<{ f: string; definer: boolean; config: string[] | null }>(
      `select p.oid::regprocedure::text as f, p.prosecdef as definer, p.proconfig as config from pg_proc p
       where p.pronamespace = 'relay'::regnamespace and p.proname like '%presence%' order by 1`);
    expect(rows.map((r) => r.f)).toEqual([
      'relay._presence_notify(uuid,text[])', 'relay.presence_end(uuid)', 'relay.presence_members(text[])', 'relay.presence_sweep()',
      'relay.presence_sync(uuid,integer,jsonb,jsonb,boolean)',
    ]);
    for (const r of rows) {
      expect(r.config, r.f).toEqual(['search_path=pg_catalog, pg_temp']);
      // the notify helper runs inside the others, as their owner; the role cannot call it
      expect(r.definer, r.f).toBe(r.f !== 'relay._presence_notify(uuid,text[])');
    }
    const id = '00000000-0000-4000-8000-0000000000a1';
    const seen = await asRelayRole(async (c) => {
      expect((await c.query(`select relay.presence_sync($1, 60000, '[{"t":"lp","s":"u1","n":"U"}]') as known`, [id])).rows).toEqual([{ known: false }]);
      const members = (await c.query(`select * from relay.presence_members('{lp}')`)).rows;
      await c.query('select relay.presence_end($1)', [id]);
      return { members, refused: await sqlState(c, `update relay.presence set name = 'x'`) };
    });
    expect(seen).toEqual({ members: [{ tenant: 'lp', sub: 'u1', name: 'U' }], refused: '42501' });
    expect((await db.query(`select count(*)::int as n from relay.presence_relays where relay = $1`, [id])).rows).toEqual([{ n: 0 }]);
  });

  it('snapshots and streams a table in a schema it has no USAGE on (the relay names it by oid)', async () => {
    await asRelayRole(async (c) => expect(await sqlState(c, "select 'sales.invoices'::regclass")).toBe('42501'));
    const client = await connect(relay.url, await token({ tenant_id: 'acme' }));
    try {
      client.send({ type: 'subscribe', id: 's', table: 'sales.invoices', snapshot: true });
      const snapshot = await client.next((f) => f.type === 'snapshot' && f.more === false);
      expect(snapshot.rows).toEqual([{ id: 1, tenant_id: 'acme', amount: '1.50' }]);
      await db.query(`insert into sales.invoices values (3, 'acme', 3.25)`);
      const tx = await client.next((f) => f.type === 'tx' && f.sub === 's');
      expect(tx.changes).toEqual([expect.objectContaining({ table: 'sales.invoices', op: 'insert', row: { id: 3, tenant_id: 'acme', amount: '3.25' } })]);
    } finally {
      await client.close();
    }
  });
});

describe('pgrelay start', () => {
  const cli = useCliProcesses();
  const start = async (databaseUrl: string) => cli.run(['start'], relayEnv(db, await freePort(), { DATABASE_URL: databaseUrl, LOG_FORMAT: 'json' }));
  const SUPERUSER_WARNING = /connected as \S+, a superuser: the relay needs only relay_reader; run it as a login role of its own \(create role pgrelay login password '…' in role relay_reader\)/;

  /** Starts, waits until it listens, stops it with SIGTERM (exit 0) and returns its output; kills it when it never listens. */
  const outputOfStart = async (databaseUrl: string) => {
    const p = await start(databaseUrl);
    try {
      await p.waitFor(/pgrelay listening on/, 90_000);
    } catch (err) {
      p.signal('SIGKILL');
      await p.exited;
      throw err;
    }
    p.signal('SIGTERM');
    expect(await p.exited).toBe(0);
    return p.output();
  };

  it('as the relay role: starts on a current schema without migrating it, and does not warn', async () => {
    const out = await outputOfStart(db.relayUrl);
    expect(out).toMatch(/"msg":"migrations up to date"/);
    expect(out).toContain(`"role":"${role}"`);
    expect(out).not.toMatch(SUPERUSER_WARNING);
  }, 120_000);

  it('as a superuser: starts, and warns once that the relay needs only relay_reader', async () => {
    const out = await outputOfStart(db.url);
    expect(out.split('\n').filter((l) => SUPERUSER_WARNING.test(l))).toEqual([expect.stringContaining('"level":"warn"')]);
  }, 120_000);

  it('as the relay role on a schema that is behind: exits 1, saying to migrate as the owner', async () => {
    const behind = await createTestDatabase();
    try {
      await behind.query(`delete from relay.migrations where name = (select max(name) from relay.migrations)`);
      const p = await start(behind.relayUrl);
      expect(await p.exited).toBe(1);
      expect(p.stderr().trim().split('\n').at(-1)).toMatch(
        new RegExp(`^pgrelay: The relay schema of this database lacks 1 migration\\(s\\) \\(from \\d+_[\\w-]+\\), and role ${role} may not apply them: run pgrelay migrate with the owner's DATABASE_URL, then start the relay again\\.$`));
    } finally {
      await behind.drop();
    }
  }, 120_000);

  it('as a role outside relay_reader: exits 1, saying to grant it', async () => {
    const stranger = `pgrelay_stranger_${randomBytes(3).toString('hex')}`;
    await db.query(`create role ${stranger} login password 'x'`);
    try {
      const p = await start(db.urlAs(stranger, 'x'));
      expect(await p.exited).toBe(1);
      expect(p.stderr().trim().split('\n').at(-1)).toBe(
        `pgrelay: Role ${stranger} cannot read schema relay: grant it relay_reader (grant relay_reader to ${stranger}), or use a login role made with create role … login password '…' in role relay_reader.`);
    } finally {
      await db.query(`drop role ${stranger}`);
    }
  }, 120_000);
});

describe('pgrelay migrate --relay-role', () => {
  const name = `pgrelay_made_${randomBytes(3).toString('hex')}`;
  afterAll(async () => {
    await db.query(`drop role if exists ${name}; drop role if exists ${name}_db`);
  });
  const migrate = async (args: string[], env: Record<string, string> = {}) => {
    const p = runCli(['migrate', ...args], { DATABASE_URL: db.url, ...env });
    return { code: await p.exited, out: p.stdout().trim(), err: p.stderr().trim() };
  };
  /** Whether the server checks passwords at all (a trust cluster, such as CI's PostgreSQL 15, does not). */
  const checksPasswords = async () => {
    const c = new pg.Client({ connectionString: db.urlAs(role, 'not-its-password') });
    return c.connect().then(async () => (await c.end(), false), () => true);
  };
  const loginAs = async (password: string) => {
    const c = new pg.Client({ connectionString: db.urlAs(name, password) });
    return c.connect().then(async () => {
      const { rows: [r] } = await c.query<{ u: string }>('select current_user as u');
      await c.end();
      return r!.u;
    }, (err: { code?: string }) => err.code);
  };
  /** True when the role's stored SCRAM verifier is that of `password`. */
  const storedFor = async (password: string) => {
    const { rows: [r] } = await db.query<{ v: string }>(`select rolpassword as v from pg_authid where rolname = $1`, [name]);
    const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(r!.v);
    return m !== null && scramVerifier(password, Buffer.from(m[2]!, 'base64'), Number(m[1])) === r!.v;
  };

  it('creates a login role in relay_reader with RELAY_DB_PASSWORD, sets a new password on a second run, and logs in with it', async () => {
    const first = await migrate(['--relay-role', name], { RELAY_DB_PASSWORD: 'first-password' });
    expect(first).toMatchObject({ code: 0, out: `pgrelay migrations already up to date\nrelay role ${name}: created, a member of relay_reader` });
    expect(await storedFor('first-password')).toBe(true);
    const second = await migrate(['--relay-role', name], { RELAY_DB_PASSWORD: 'second-password' });
    expect(second.out.split('\n').at(-1)).toBe(`relay role ${name}: password set from RELAY_DB_PASSWORD, a member of relay_reader`);
    expect(await storedFor('second-password')).toBe(true);
    expect(await migrate(['--relay-role', name])).toMatchObject({ code: 0, out: expect.stringContaining(`relay role ${name}: a member of relay_reader (password unchanged: RELAY_DB_PASSWORD is not set)`) });
    expect((await db.query(`select pg_has_role($1, 'relay_reader', 'member') as m, rolsuper from pg_roles where rolname = $1`, [name])).rows).toEqual([{ m: true, rolsuper: false }]);
    expect(await loginAs('second-password')).toBe(name);
    if (await checksPasswords()) expect(await loginAs('first-password')).toBe('28P01');
  }, 240_000);

  it('refuses the owner running it, a role with powers of its own, and a new role without a password', async () => {
    const owner = (await db.query<{ u: string }>('select current_user as u')).rows[0]!.u;
    expect(await migrate(['--relay-role', owner], { RELAY_DB_PASSWORD: 'p' })).toMatchObject({
      code: 1, err: `pgrelay: Role ${owner} is the one running the migrations; the relay needs a login role of its own: name another with --relay-role.` });
    await db.query(`create role ${name}_db login createdb`);
    expect(await migrate(['--relay-role', `${name}_db`], { RELAY_DB_PASSWORD: 'p' })).toMatchObject({
      code: 1, err: `pgrelay: Role ${name}_db is a superuser or may create roles or databases, bypass row security or replicate; the relay's role should be a plain login role: name another with --relay-role.` });
    expect(await migrate(['--relay-role', `${name}_new`])).toMatchObject({
      code: 1, err: `pgrelay: Role ${name}_new does not exist yet: set RELAY_DB_PASSWORD to the password it should log in with (openssl rand -hex 24 makes one).` });
    expect((await db.query(`select 1 from pg_roles where rolname = $1`, [`${name}_new`])).rowCount).toBe(0);
  }, 240_000);
});
