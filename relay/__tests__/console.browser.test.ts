// The console at / in Chromium (issue 13): a dev token in one click, a table picked, writes applied in place and highlighted,
// a filter, the frame log paused and cleared, a refused token's reason, the relay's load for an all-tenant token, and what a
// fresh install shows. Screenshots go to relay/__tests__/artifacts/.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { createTestDatabase } from '../../db/testing/database.js';
import { createOrders, EXAMPLE_COLUMNS, leakGuard, useTestDatabase, type TestDatabase } from '../../db/testing/index.js';
import { loadConfig } from '../ops/config.js';
import { createLogger } from '../ops/log.js';
import { startRelay, type Relay } from '../relay.js';
import { haveChromium, itInChromium, launchChromium, screenshot, skipReason } from './support/chromium.js';
import { SECRET, token } from './support/relay-harness.js';
import { serverEnv } from './support/server-under-test.js';

if (!haveChromium) console.warn(`console.browser.test.ts skipped: ${skipReason}`);

const artifacts = fileURLToPath(new URL('./artifacts/', import.meta.url));
const db = useTestDatabase();
const relays: Relay[] = [];
const cleanups: Array<() => Promise<void>> = [];
let browser: Browser | undefined;

/**
 * A relay in development mode on `database`, as the relay role (its owner lists the tenants); each test closes its own
 * (the leak guard checks after every test).
 */
async function devRelay(database: TestDatabase): Promise<string> {
  const config = loadConfig({ DATABASE_URL: database.relayUrl, PORT: '0', HOST: '127.0.0.1', RELAY_JWT_SECRET: SECRET, LOG_LEVEL: 'silent', ...serverEnv });
  const relay = await startRelay({ config: { ...config, databaseUrl: database.relayUrl }, log: createLogger('silent'), dev: { secret: SECRET, stateDir: '/tmp/pgrelay-console', databaseUrl: database.url } });
  relays.push(relay);
  return `http://127.0.0.1:${relay.port}`;
}
const closeRelays = async () => {
  for (const r of relays.splice(0)) await r.close();
};

beforeAll(async () => {
  // the example's orders without created_at, with a card token the relay leaves out
  const { created_at: _, ...columns } = EXAMPLE_COLUMNS;
  await createOrders(db, { id: 'bigserial primary key', columns: { ...columns, card_token: 'text' }, excluded: ['card_token'] });
  await db.query(`
    insert into orders (tenant_id, customer, total, status) values
      ('acme', 'Ada Lovelace', 120.00, 'paid'), ('acme', 'Grace Hopper', 75.50, 'open'), ('acme', 'Alan Turing', 310.25, 'paid'), ('globex', 'Hank Scorpio', 999.99, 'paid');
  `);
  if (!haveChromium) return;
  browser = await launchChromium();
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await closeRelays();
  for (const c of cleanups) await c();
});
leakGuard(() => db.name);

/**
 * Runs `test` on a page at `url` that records failed requests and page errors in `failures`, then closes the page and
 * every relay the test started.
 */
async function inPage(url: string, test: (page: Page, failures: string[]) => Promise<void>): Promise<void> {
  const context = await browser!.newContext({ viewport: { width: 1400, height: 820 } });
  try {
    const page = await context.newPage();
    const failures: string[] = [];
    page.on('response', (r) => void (r.status() >= 400 && failures.push(`${r.status()} ${r.url()}`)));
    page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
    await page.goto(url);
    await test(page, failures);
  } finally {
    await context.close();
    await closeRelays();
  }
}

const cells = (page: Page) => page.evaluate(() => [...document.querySelectorAll('#grid tbody tr:not(.deleted)')].map((tr) => [...(tr as HTMLTableRowElement).cells].map((td) => td.textContent)));
const shot = (page: Page, name: string) => screenshot(page, path.join(artifacts, name));

describe('the console in Chromium', () => {
  itInChromium('gets a dev token in one click, follows a table live with changes highlighted, filters, and pauses and clears the frame log', async () => {
    const http = await devRelay(db);
    await inPage(`${http}/`, async (page, failures) => {
      // development mode: the tenants of the watched tables to pick from
      await page.locator('#dev').waitFor({ state: 'visible', timeout: 20_000 });
      expect(await page.locator('#dev-tenant option').allTextContents()).toEqual(['tenant acme', 'tenant globex', 'all tenants (admin)']);
      await page.click('#dev-token');
      await page.locator('#state[data-state=open]').waitFor({ timeout: 20_000 });
      expect(await page.textContent('#tenant')).toBe('acme');

      // the tables this token may see, with columns and types (never the excluded card_token)
      await page.click('#tables li[data-table="public.orders"]');
      expect(await page.locator('#tables li.chosen .cols').innerText()).toBe('id bigint · pk\ntenant_id text · tenant\ncustomer text\ntotal numeric(10,2)\nstatus text');
      await page.waitForFunction(() => document.querySelectorAll('#grid tbody tr').length === 3, undefined, { timeout: 20_000 });
      expect((await cells(page)).map((r) => r[2]).sort()).toEqual(['Ada Lovelace', 'Alan Turing', 'Grace Hopper']);
      // issue 26: the snapshot in key order, and the frame that carried it folded to one line
      expect((await cells(page)).map((r) => r[2])).toEqual(['Ada Lovelace', 'Grace Hopper', 'Alan Turing']);
      const snapshotFrame = page.locator('#log .frame:has(details)');
      expect(await snapshotFrame.locator('summary').textContent()).toMatch(/^3 rows, seq \d+$/);
      expect(await snapshotFrame.locator('details').getAttribute('open')).toBeNull();
      expect((await snapshotFrame.boundingBox())!.height).toBeLessThan(60);
      // and what to paste into an app for the same subscription
      expect(await page.locator('#snippet').isVisible()).toBe(true);
      const snippet = (await page.textContent('#snippet-code'))!;
      expect(snippet).toContain(`createRelayClient({ url: "${http.replace('http', 'ws')}/ws"`);
      expect(snippet).toContain(`liveQueryOptions(client, "public.orders")`);
      expect(snippet).toContain(`client.subscribe("public.orders", { snapshot: true }, {`);
      await transform(snippet, { loader: 'tsx' }); // it parses: throws on a syntax error
      expect(await page.locator('#grid th').allInnerTexts()).toEqual(['ID\nbigint', 'TENANT_ID\ntext', 'CUSTOMER\ntext', 'TOTAL\nnumeric(10,2)', 'STATUS\ntext']); // the type on a line of its own

      // a write from plain SQL shows up in place and highlighted
      await db.query(`insert into orders (tenant_id, customer, total) values ('acme', 'Katherine Johnson', 64.00), ('globex', 'Mr Burns', 1.00)`);
      await page.locator('#grid tr.inserted', { hasText: 'Katherine Johnson' }).waitFor({ timeout: 5000 });
      // issue 26: a new row goes where its key belongs (last here), as the snapshot's rows are listed
      expect((await cells(page)).map((r) => r[2])).toEqual(['Ada Lovelace', 'Grace Hopper', 'Alan Turing', 'Katherine Johnson']);
      // and the relay's position in the header is never behind the view's seq
      expect(Number(await page.textContent('#position'))).toBeGreaterThanOrEqual(Number(await page.textContent('#seq')));
      await db.query(`update orders set status = 'paid', total = 80.00 where customer = 'Grace Hopper'`);
      const grace = page.locator('#grid tbody tr', { hasText: 'Grace Hopper' });
      await grace.locator('td.changed', { hasText: '80.00' }).waitFor({ timeout: 5000 });
      // only the cells that changed are highlighted
      expect(await grace.locator('td.changed').allTextContents()).toEqual(['80.00', 'paid']);
      await shot(page, 'console-live.png');
      await db.query(`delete from orders where customer = 'Alan Turing'`);
      await page.locator('#grid tr.deleted', { hasText: 'Alan Turing' }).waitFor({ timeout: 5000 });
      expect((await cells(page)).map((r) => r[2]).sort()).toEqual(['Ada Lovelace', 'Grace Hopper', 'Katherine Johnson']);
      expect(await page.textContent('#seq')).toMatch(/^\d+$/);
      expect(await page.textContent('#lag')).toMatch(/^\d+ ms$/);
      expect(await page.textContent('#log')).toContain('"type": "snapshot"');
      expect(await page.textContent('#log')).not.toContain('Mr Burns');

      // a filter from the builder: only matching rows
      await page.click('#add-filter');
      await page.selectOption('#filters .f-col', 'status');
      await page.selectOption('#filters .f-op', 'eq');
      await page.fill('#filters .f-val', 'paid');
      await page.click('#subscribe');
      await page.waitForFunction(() => [...document.querySelectorAll('#grid tbody tr')].length === 2, undefined, { timeout: 10_000 });
      expect((await cells(page)).map((r) => r[2]).sort()).toEqual(['Ada Lovelace', 'Grace Hopper']);
      expect(await page.textContent('#log')).toContain('"filter": {\n    "status": {\n      "eq": "paid"');
      const filtered = (await page.textContent('#snippet-code'))!;
      expect(filtered).toContain('liveQueryOptions(client, "public.orders", { filter: {"status":{"eq":"paid"}} })');
      expect(filtered).toContain('client.subscribe("public.orders", { snapshot: true, filter: {"status":{"eq":"paid"}} }, {');
      await transform(filtered, { loader: 'tsx' });

      // pause: frames are counted, not shown; clear empties the log
      await page.click('#pause');
      const before = await page.locator('#log .frame').count();
      await db.query(`update orders set total = 121.00 where customer = 'Ada Lovelace'`);
      await page.locator('#grid td.changed', { hasText: '121.00' }).waitFor({ timeout: 5000 });
      expect(await page.locator('#log .frame').count()).toBe(before);
      expect(await page.textContent('#log-hint')).toBe('1 frames while paused');
      await page.click('#pause');
      await page.click('#clear');
      expect(await page.locator('#log .frame').count()).toBe(0);
      expect(failures).toEqual([]);
    });
  }, 120_000);

  itInChromium('replays from a since, and shows an all-tenant token the relay\'s connections per tenant and table', async () => {
    const http = await devRelay(db);
    const since = Number((await db.query<{ p: string }>('select relay.position()::text as p')).rows[0]!.p);
    await db.query(`insert into orders (tenant_id, customer, total) values ('globex', 'Lisa Simpson', 5.00)`);
    await inPage(`${http}/#token=${await token({ all_tenants: true })}`, async (page, failures) => {
      await page.locator('#state[data-state=open]').waitFor({ timeout: 20_000 });
      expect(await page.textContent('#tenant')).toBe('all tenants');
      await page.click('#tables li[data-table="public.orders"]');
      await page.waitForFunction(() => document.querySelectorAll('#grid tbody tr').length > 3, undefined, { timeout: 10_000 });
      await page.fill('#since', String(since));
      await page.click('#subscribe');
      await page.waitForFunction(() => [...document.querySelectorAll('#grid tbody tr')].map((tr) => tr.textContent).join('|').includes('Lisa Simpson') && document.querySelectorAll('#grid tbody tr').length === 1, undefined, { timeout: 10_000 });
      await page.locator('#stats').waitFor({ state: 'visible', timeout: 10_000 });
      await page.locator('#stats-body td', { hasText: 'public.orders' }).waitFor({ timeout: 10_000 });
      expect(await page.textContent('#stats-body')).toContain('1 connections, 1 subscriptions');
      // a transaction committed before this connection is replayed history: no lag to show
      expect(await page.textContent('#lag')).toBe('replay');
      // the snippet replays from the same seq, with no snapshot (so no liveQueryOptions)
      const snippet = (await page.textContent('#snippet-code'))!;
      expect(snippet).toContain(`client.subscribe("public.orders", { since: ${since} }, {`);
      expect(snippet).not.toContain('liveQueryOptions');
      await transform(snippet, { loader: 'tsx' });
      await shot(page, 'console-all-tenants.png');
      expect(failures).toEqual([]);
    });
  }, 120_000);

  itInChromium('shows why a token was refused', async () => {
    const http = await devRelay(db);
    const wrong = await token({ tenant_id: 'acme' }, { secret: 'another-secret-another-secret-another-secret' });
    await inPage(`${http}/#token=${wrong}`, async (page) => {
      await page.locator('#error', { hasText: 'The relay refused the token: token signature invalid.' }).waitFor({ timeout: 20_000 });
      await page.locator('#state[data-state=closed]').waitFor({ timeout: 10_000 });
      expect(await page.textContent('#log')).toContain('closed 4401 token signature invalid');
      await shot(page, 'console-bad-token.png');
    });
  }, 60_000);

  itInChromium('issue 26: at 1,400 px every column of the example orders table is in view, and the header keeps up with the view', async () => {
    const example = await createTestDatabase();
    cleanups.push(() => example.drop());
    await example.query(readFileSync(fileURLToPath(new URL('../../examples/dashboard/schema.sql', import.meta.url)), 'utf8'));
    const http = await devRelay(example);
    await inPage(`${http}/`, async (page, failures) => {
      await page.locator('#dev').waitFor({ state: 'visible', timeout: 20_000 });
      await page.click('#dev-token');
      await page.locator('#state[data-state=open]').waitFor({ timeout: 20_000 });
      await page.click('#tables li[data-table="public.orders"]');
      await page.waitForFunction(() => document.querySelectorAll('#grid tbody tr').length === 5, undefined, { timeout: 20_000 });
      await example.query(`update orders set status = 'paid' where customer = 'Grace Hopper'`);
      await page.locator('#grid td.changed', { hasText: 'paid' }).waitFor({ timeout: 5000 });
      const fit = await page.evaluate(() => {
        const wrap = document.querySelector('.grid-wrap')!;
        const last = [...document.querySelectorAll('#grid th')].at(-1)!;
        return { scroll: wrap.scrollWidth, width: wrap.clientWidth, lastRight: last.getBoundingClientRect().right, wrapRight: wrap.getBoundingClientRect().right, last: last.textContent };
      });
      expect(fit.last).toBe('created_at timestamp with time zone');
      expect(fit.scroll).toBeLessThanOrEqual(fit.width);
      expect(fit.lastRight).toBeLessThanOrEqual(fit.wrapRight);
      expect(Number(await page.textContent('#position'))).toBe(Number(await page.textContent('#seq')));
      await shot(page, 'console-1400px.png');
      expect(failures).toEqual([]);
    });
  }, 60_000);

  itInChromium('on a fresh install, says which command watches a table instead of showing unknown_table', async () => {
    const empty = await createTestDatabase();
    cleanups.push(() => empty.drop());
    const http = await devRelay(empty);
    await inPage(`${http}/`, async (page, failures) => {
      await page.locator('#dev').waitFor({ state: 'visible', timeout: 20_000 });
      // no tenant found yet: a placeholder tenant still gives a token
      expect(await page.locator('#dev-tenant option').allTextContents()).toEqual(['tenant demo', 'all tenants (admin)']);
      await page.click('#dev-token');
      await page.locator('#state[data-state=open]').waitFor({ timeout: 20_000 });
      await page.locator('#tables-hint', { hasText: 'No table is watched yet' }).waitFor({ timeout: 10_000 });
      expect(await page.textContent('#tables-hint pre')).toBe('DATABASE_URL=$(cat /tmp/pgrelay-console/database-url) npm run pgrelay -- watch <table> --tenant-column <column>');
      expect(await page.textContent('#log')).not.toContain('unknown_table');
      await shot(page, 'console-fresh-install.png');
      expect(failures).toEqual([]);
    });
  }, 60_000);
});
