// Issue 26: each message a new user met in their first hour says what to do next, run as the user runs the CLI.
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../client/shared/free-port.js';
import { createOrders, leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { cliCommand } from '../ops/cli-command.js';
import { useCliProcesses } from './support/cli-process.js';

const db = useTestDatabase();
const processes = useCliProcesses();
beforeAll(async () => {
  await createOrders(db, { columns: { customer: 'text', total: 'numeric(10,2)' }, watch: false });
  await db.query(`create table customers (id int primary key, name text)`);
});
leakGuard(() => db.name);

async function cli(args: string[], env: Record<string, string> = { DATABASE_URL: db.url }): Promise<{ code: number | string; stderr: string }> {
  const p = processes.run(args, env);
  return { code: await p.exited, stderr: p.stderr() };
}

describe('pgrelay watch with a wrong name', () => {
  it('a table that does not exist: the tables there are', async () => {
    const expected = 'pgrelay: There is no table public.nosuch; this database has public.customers and public.orders. Give one of those (a name without a schema means public.<name>).\n';
    expect(await cli(['watch', 'nosuch', '--tenant-column', 'tenant_id'])).toEqual({ code: 1, stderr: expected });
    expect(await cli(['unwatch', 'nosuch'])).toEqual({ code: 1, stderr: expected });
    // a schema that does not exist is the same mistake
    expect(await cli(['watch', 'sales.orders', '--tenant-column', 'tenant_id'])).toEqual({ code: 1, stderr: expected.replace('public.nosuch', 'sales.orders') });
  }, 60_000);

  it('a database with many tables: how many, the first twenty, and how to list them all', async () => {
    await db.query(`create schema many; ${Array.from({ length: 25 }, (_, i) => `create table many.t${String(i).padStart(2, '0')} (id int primary key);`).join(' ')}`);
    try {
      const { code, stderr } = await cli(['watch', 'nosuch', '--tenant-column', 'tenant_id']);
      expect(code).toBe(1);
      expect(stderr).toBe(`pgrelay: There is no table public.nosuch; this database has 27 tables, among them ${Array.from({ length: 19 }, (_, i) => `many.t${String(i).padStart(2, '0')}`).join(', ')} and many.t19 (psql's \\dt *.* lists them all). Give one of those (a name without a schema means public.<name>).\n`);
    } finally {
      await db.query('drop schema many cascade');
    }
  }, 60_000);

  it('a tenant column the table lacks: the columns it has, and the way out for a table without tenants', async () => {
    expect(await cli(['watch', 'orders', '--tenant-column', 'tenant'])).toEqual({
      code: 1,
      stderr: 'pgrelay: Table public.orders has no column "tenant"; its columns are id, tenant_id, customer, total: give the one that holds the tenant to --tenant-column, or --no-tenant for a table whose rows belong to no tenant.\n',
    });
    expect(await cli(['watch', 'orders', '--tenant-column', 'tenant_id', '--exclude', 'card'])).toEqual({
      code: 1,
      stderr: 'pgrelay: Table public.orders has no column "card"; its columns are id, tenant_id, customer, total: check --exclude.\n',
    });
  }, 60_000);
});

describe('an unknown option or command names the help command as this checkout runs it', () => {
  it('says npm run pgrelay -- help, since pgrelay is on no PATH here', async () => {
    expect(await cli(['watch', 'orders', '--tenant', 'acme'])).toEqual({ code: 1, stderr: 'pgrelay: Unknown option --tenant; run npm run pgrelay -- help for the list.\n' });
    expect(await cli(['nosuch'])).toEqual({ code: 1, stderr: 'pgrelay: Unknown command "nosuch"; run npm run pgrelay -- help for the list.\n' });
    expect(await cli(['start', '--colour', 'red'])).toEqual({ code: 1, stderr: 'pgrelay: Unknown option --colour; run npm run pgrelay -- start --help for the list.\n' });
  }, 60_000);

  it('says npx pgrelay where pgrelay is installed as a dependency (its bin is then in node_modules/.bin)', () => {
    expect(cliCommand('help', '/srv/app/node_modules/pgrelay/dist/relay/ops/cli-command.js')).toBe('npx pgrelay help');
    expect(cliCommand('help', '/home/me/pgrelay/dist/relay/ops/cli-command.js')).toBe('npm run pgrelay -- help');
  });
});

describe('pgrelay start with several things wrong', () => {
  it('an unreachable database and no secret: the database first, and the secret in the same message', async () => {
    const port = await freePort();
    expect(await cli(['start'], { DATABASE_URL: `postgres://nobody@127.0.0.1:${port}/x`, LOG_LEVEL: 'warn' })).toEqual({
      code: 1,
      stderr: [
        'pgrelay: 2 settings need fixing:',
        `  - Cannot connect to the database at 127.0.0.1:${port}/x: connection refused (is Postgres running there?).`,
        '  - Set RELAY_JWT_SECRET (an HS256 secret of at least 32 characters) or RELAY_JWKS_URL so that the relay can verify client tokens.',
        '',
      ].join('\n'),
    });
  }, 60_000);

  it('a reachable database and no secret: the secret alone', async () => {
    expect(await cli(['start'], { DATABASE_URL: db.relayUrl, LOG_LEVEL: 'warn' })).toEqual({
      code: 1,
      stderr: 'pgrelay: Set RELAY_JWT_SECRET (an HS256 secret of at least 32 characters) or RELAY_JWKS_URL so that the relay can verify client tokens.\n',
    });
  }, 60_000);

  it('several bad values: every one of them at once', async () => {
    expect(await cli(['start', '--max-frame', '1'], { DATABASE_URL: 'mysql://x', PORT: 'eighty', RELAY_REUSEPORT: 'yes' })).toEqual({
      code: 1,
      stderr: [
        'pgrelay: 4 settings need fixing:',
        '  - DATABASE_URL must be a postgres:// connection URL; got (value hidden).',
        '  - PORT must be a TCP port number from 0 to 65535; got "eighty".',
        '  - --max-frame (RELAY_MAX_FRAME) must be a size from 16kb to 64mb, such as 256kb; got "1".',
        '  - RELAY_REUSEPORT must be one of off, on (or 0, 1); got "yes".',
        '',
      ].join('\n'),
    });
  }, 60_000);
});

describe('an SSE request without a token', () => {
  it('is told to send Authorization: Bearer, and the log calls it an SSE request, not a WebSocket upgrade', async () => {
    const port = await freePort();
    const relay = await processes.startRelay(db, port, { LOG_FORMAT: 'json' });
    const res = await fetch(`http://127.0.0.1:${port}/sse?table=orders`);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: 'bad_token', message: 'no token: send it in the header Authorization: Bearer <jwt>, or as ?token=' });
    const line = JSON.parse(await relay.waitFor(/refused a /, 10_000)) as Record<string, unknown>;
    expect(line).toMatchObject({ msg: 'refused a Server-Sent Events request: no token: send it in the header Authorization: Bearer <jwt>, or as ?token=', reason: 'missing', transport: 'sse' });
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  }, 60_000);
});
