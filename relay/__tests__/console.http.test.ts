// The console's HTTP side (issue 13): the page, its favicon and script modules with cache headers, the tables a token may
// see, relay load for all-tenant tokens, development tokens only in dev mode and only for localhost, and the start log's next step.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../client/shared/free-port.js';
import { createTestDatabase } from '../../db/testing/database.js';
import { createOrders, leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { loadConfig } from '../ops/config.js';
import { createLogger, prettyLogs } from '../ops/log.js';
import { startRelay, type Relay } from '../relay.js';
import { relayEnv, runCli } from './support/cli-process.js';
import { connect, httpGet, SECRET, startTestRelay, token, type TestRelay } from './support/relay-harness.js';
import { serverEnv } from './support/server-under-test.js';

const db = useTestDatabase();
let relay: TestRelay;
let devRelay: Relay;
let dev: string;

beforeAll(async () => {
  await createOrders(db, { id: 'bigserial primary key', columns: { customer: 'text', total: 'numeric(10,2)', card_token: 'text' }, excluded: ['card_token'] });
  await db.query(`
    create table plans (code text primary key, price int);
    create table notes (id int primary key, tenant_id text);
    select relay.watch('plans', null);
    select relay.watch('notes', 'tenant_id');
    insert into orders (tenant_id, customer, total) values ('acme', 'Ada', 1), ('globex', 'Hank', 2), ('acme', 'Grace', 3);
  `);
  relay = await startTestRelay(db);
  // as the relay role, like every test relay; the tenants are listed by reading the tables, which only their owner may
  const config = loadConfig({ DATABASE_URL: db.relayUrl, PORT: '0', HOST: '127.0.0.1', RELAY_JWT_SECRET: SECRET, LOG_LEVEL: 'silent', ...serverEnv });
  devRelay = await startRelay({ config: { ...config, databaseUrl: db.relayUrl }, log: createLogger('silent'), dev: { secret: SECRET, stateDir: '/tmp/pgrelay-console-test', databaseUrl: db.url } });
  dev = `http://127.0.0.1:${devRelay.port}`;
});
afterAll(() => devRelay.close());
leakGuard(() => db.name);

/** A request over a connection of its own (closed afterwards), with headers and an optional body. */
function request(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', agent: false, headers: { connection: 'close', ...init.headers } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('the console page', () => {
  it('is served at / with an ETag and no-cache (304 when unchanged), with a favicon cached for a day', async () => {
    const page = await httpGet(`${relay.http}/`);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.body).toContain('<link rel="icon" href="/favicon.svg"');
    const again = await request(`${relay.http}/`, { headers: { 'if-none-match': String(page.headers.etag) } });
    expect([again.status, again.body]).toEqual([304, '']);
    for (const icon of ['/favicon.svg', '/favicon.ico']) {
      const res = await httpGet(`${relay.http}${icon}`);
      expect([res.status, res.headers['content-type'], res.headers['cache-control']]).toEqual([200, 'image/svg+xml', 'public, max-age=86400']);
      expect(res.body).toMatch(/^<svg /);
    }
  });

  it('loads its script as modules under /console/, JavaScript with an ETag and no-cache (304 when unchanged)', async () => {
    const page = await httpGet(`${relay.http}/`);
    expect(page.body).toContain('<script type="module" src="/console/main.js"></script>');
    expect(page.body).not.toMatch(/<script>/); // no inline script
    const main = await httpGet(`${relay.http}/console/main.js`);
    expect([main.status, main.headers['content-type'], main.headers['cache-control'], main.headers['x-content-type-options']])
      .toEqual([200, 'text/javascript; charset=utf-8', 'no-cache', 'nosniff']);
    expect(main.headers.etag).toMatch(/^"[\w-]{22}"$/);
    // compiled: the modules it imports, not the types
    expect(main.body).toMatch(/from ['"]\.\/view\.js['"]/);
    expect(main.body).not.toMatch(/import type|: string/);
    const again = await request(`${relay.http}/console/main.js`, { headers: { 'if-none-match': String(main.headers.etag) } });
    expect([again.status, again.headers.etag, again.body]).toEqual([304, main.headers.etag, '']);
    const view = await httpGet(`${relay.http}/console/view.js`);
    expect([view.status, view.headers['content-type']]).toEqual([200, 'text/javascript; charset=utf-8']);
    expect(view.headers.etag).not.toBe(main.headers.etag);
    expect((await httpGet(`${relay.http}/console/nope.js`)).status).toBe(404);
  });
});

describe('GET /api/tables', () => {
  it('lists only the tables the token may see, with columns in table order and their types, never an excluded column', async () => {
    const res = await request(`${relay.http}/api/tables`, { headers: bearer(await token({ tenant_id: 'acme' })) });
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = JSON.parse(res.body);
    expect(body).toMatchObject({ tenant: 'acme', allTenants: false, watched: 3 });
    // plans has no tenant column: only all-tenant tokens see it
    expect(body.tables.map((t: { name: string }) => t.name)).toEqual(['public.notes', 'public.orders']);
    expect(body.tables[1]).toEqual({
      name: 'public.orders', tenantColumn: 'tenant_id', primaryKey: ['id'],
      columns: [{ name: 'id', type: 'bigint' }, { name: 'tenant_id', type: 'text' }, { name: 'customer', type: 'text' }, { name: 'total', type: 'numeric(10,2)' }],
    });
    const limited = JSON.parse((await request(`${relay.http}/api/tables`, { headers: bearer(await token({ tenant_id: 'acme', tables: ['orders'] })) })).body);
    expect(limited.tables.map((t: { name: string }) => t.name)).toEqual(['public.orders']);
    const admin = JSON.parse((await request(`${relay.http}/api/tables`, { headers: bearer(await token({ all_tenants: true })) })).body);
    expect(admin.tables.map((t: { name: string }) => t.name)).toEqual(['public.notes', 'public.orders', 'public.plans']);
  });

  it('refuses a bad or missing token with 401 and the reason', async () => {
    const wrong = await request(`${relay.http}/api/tables`, { headers: bearer(await token({ tenant_id: 'a' }, { secret: 'another-secret-another-secret-another-secret' })) });
    expect([wrong.status, JSON.parse(wrong.body)]).toEqual([401, { error: 'bad_token', reason: 'bad_signature', message: 'The relay refused the token: token signature invalid.' }]);
    const none = await request(`${relay.http}/api/tables`);
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body).reason).toBe('missing');
  });
});

describe('GET /api/stats', () => {
  it('shows connections and subscriptions per tenant and table to an all-tenant token only', async () => {
    const a1 = await connect(relay.url, await token({ tenant_id: 'acme' }));
    const a2 = await connect(relay.url, await token({ tenant_id: 'acme' }));
    const g = await connect(relay.url, await token({ tenant_id: 'globex' }));
    a1.send({ type: 'subscribe', id: 'o', table: 'orders' });
    a1.send({ type: 'subscribe', id: 'n', table: 'notes' });
    a2.send({ type: 'subscribe', id: 'o', table: 'orders' });
    await a1.next((f) => f.type === 'subscribed' && f.id === 'n');
    await a2.next((f) => f.type === 'subscribed');
    const forbidden = await request(`${relay.http}/api/stats`, { headers: bearer(await token({ tenant_id: 'acme' })) });
    expect(forbidden.status).toBe(403);
    const stats = JSON.parse((await request(`${relay.http}/api/stats`, { headers: bearer(await token({ all_tenants: true })) })).body);
    expect(stats).toMatchObject({ connections: 3, subscriptions: 3, position: expect.any(Number) });
    expect(stats.tenants).toEqual([
      { tenant: 'acme', connections: 2, subscriptions: 3, tables: [{ table: 'public.orders', subscriptions: 2 }, { table: 'public.notes', subscriptions: 1 }] },
      { tenant: 'globex', connections: 1, subscriptions: 0, tables: [] },
    ]);
    for (const c of [a1, a2, g]) await c.close();
  });
});

describe('development tokens', () => {
  it('exist only in dev mode: the tenants of the watched tables and a one-hour token for one of them, or for all', async () => {
    expect(JSON.parse((await httpGet(`${relay.http}/api/dev`)).body)).toEqual({ dev: false });
    expect((await request(`${relay.http}/api/dev-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tenant":"acme"}' })).status).toBe(404);

    const info = JSON.parse((await httpGet(`${dev}/api/dev`)).body);
    expect(info).toEqual({ dev: true, tenants: ['acme', 'globex'], watchCommand: 'DATABASE_URL=$(cat /tmp/pgrelay-console-test/database-url) npm run pgrelay -- watch <table> --tenant-column <column>' });
    const res = await request(`${dev}/api/dev-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tenant":"acme"}' });
    expect(res.status).toBe(200);
    const { token: minted } = JSON.parse(res.body) as { token: string };
    const claims = JSON.parse(Buffer.from(minted.split('.')[1]!, 'base64url').toString()) as Record<string, number | string>;
    expect(claims.tenant_id).toBe('acme');
    expect(Number(claims.exp) - Number(claims.iat)).toBe(3600);
    const c = await connect(`ws://127.0.0.1:${devRelay.port}/ws`, minted);
    expect(await c.next((f) => f.type === 'welcome')).toMatchObject({ tenant: 'acme' });
    await c.close();
    const all = JSON.parse((await request(`${dev}/api/dev-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"allTenants":true}' })).body);
    expect(JSON.parse(Buffer.from(all.token.split('.')[1], 'base64url').toString())).toMatchObject({ all_tenants: true });
  });

  it('are refused to other hosts, to non-JSON requests and to empty requests', async () => {
    // a page of another site whose name resolves to 127.0.0.1 (DNS rebinding) sends its own Host
    const rebinding = await request(`${dev}/api/dev-token`, { method: 'POST', headers: { host: 'evil.example', 'content-type': 'application/json' }, body: '{"tenant":"acme"}' });
    expect(rebinding.status).toBe(404);
    expect(JSON.parse((await request(`${dev}/api/dev`, { headers: { host: 'evil.example' } })).body)).toEqual({ dev: false });
    const form = await request(`${dev}/api/dev-token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'tenant=acme' });
    expect(form.status).toBe(415);
    const empty = await request(`${dev}/api/dev-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect([empty.status, JSON.parse(empty.body).message]).toEqual([400, 'Give a tenant (a non-empty string) or allTenants: true.']);
  });
});

describe('logs', () => {
  it('are readable lines in a terminal and JSON otherwise, unless LOG_FORMAT says', () => {
    expect([prettyLogs('auto', true), prettyLogs('auto', false), prettyLogs('pretty', false), prettyLogs('json', true)]).toEqual([true, false, true, false]);
  });
});

describe('pgrelay start with no watched table', () => {
  it('says once what to do next, puts the skipped uWS build at debug, and writes readable lines with LOG_FORMAT=pretty', async () => {
    const empty = await createTestDatabase();
    const port = await freePort();
    const p = runCli(['start'], relayEnv(empty, port, { LOG_FORMAT: 'pretty' }));
    try {
      await p.waitFor(/no table is watched yet/, 60_000);
      const out = p.output();
      expect(out.match(/no table is watched yet/g)).toHaveLength(1);
      expect(out).toContain('no table is watched yet; watch one with: DATABASE_URL=<your database URL> npm run pgrelay -- watch <table> --tenant-column <column>');
      expect(out).not.toMatch(/uWebSockets\.js build skipped/);
      // pretty: "HH:MM:ss.l INFO: message", not a JSON object
      expect(out).toMatch(/^\[?\d\d:\d\d:\d\d\.\d{3}\]? INFO.*pgrelay listening on/m);
      expect(out).not.toMatch(/^\{"level"/m);
    } finally {
      p.signal('SIGTERM');
      await p.exited;
      await empty.drop();
    }
  });
});

describe('npm start without DATABASE_URL (embedded development mode)', () => {
  it('logs the watch command with the embedded URL once, and the console mints dev tokens for this machine', async () => {
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'pgrelay-console-start-'));
    const port = await freePort();
    const p = runCli(['start'], { RELAY_DATA_DIR: stateDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', LOG_FORMAT: 'json' });
    try {
      await p.waitFor(/no table is watched yet/, 90_000); // initdb on a busy 2-core machine
      expect(p.output().match(/no table is watched yet/g)).toHaveLength(1);
      expect(p.output()).toContain(`no table is watched yet; watch one with: DATABASE_URL=$(cat ${path.join(stateDir, 'database-url')}) npm run pgrelay -- watch <table> --tenant-column <column>`);
      const info = JSON.parse((await httpGet(`http://127.0.0.1:${port}/api/dev`)).body);
      expect(info).toMatchObject({ dev: true, tenants: [] });
      const res = await request(`http://127.0.0.1:${port}/api/dev-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tenant":"demo"}' });
      const c = await connect(`ws://127.0.0.1:${port}/ws`, (JSON.parse(res.body) as { token: string }).token);
      expect(await c.next((f) => f.type === 'welcome')).toMatchObject({ tenant: 'demo' });
      await c.close();
    } finally {
      p.signal('SIGINT');
      await p.exited;
      const state = JSON.parse(await readFile(path.join(stateDir, 'state.json'), 'utf8').catch(() => '{}')) as { dataDir?: string };
      if (state.dataDir && !state.dataDir.startsWith(stateDir)) await rm(path.dirname(state.dataDir), { recursive: true, force: true });
      await rm(stateDir, { recursive: true, force: true });
    }
  }, 150_000);
});
