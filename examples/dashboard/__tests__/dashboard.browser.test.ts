// The dashboard example in Chromium: a real relay process, the Vite dev server and plain-SQL writes. Rows change from
// WebSocket frames alone (no HTTP after the page has loaded), also across a relay killed with SIGKILL and started again.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../db/embedded-server.js';
import { leakGuard, useTestDatabase } from '../../../db/testing/index.js';
import { runCli, type CliProcess } from '../../../relay/__tests__/support/cli-process.js';
import { SECRET, token } from '../../../relay/__tests__/support/relay-harness.js';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(chromiumPath);
const skipReason = `no Chromium at ${chromiumPath}: install Debian's chromium package or set CHROMIUM_PATH`;
if (!haveChromium) console.warn(`dashboard.browser.test.ts skipped: ${skipReason}`);

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const screenshot = here('./artifacts/dashboard.png');
const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });

const db = useTestDatabase();
const relays: CliProcess[] = [];
let vite: ViteDevServer | undefined;
let viteUrl = '';
let cacheDir: string | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  // The example's own schema: the table, relay.watch and the seed rows a new user gets.
  await db.query(readFileSync(here('../schema.sql'), 'utf8'));
  if (!haveChromium) return;
  // Vite turns port 0 into 5173, so take a free port; a cache of its own keeps a concurrent dev server's dependency cache out of the way.
  const port = await freePort();
  cacheDir = mkdtempSync(path.join(tmpdir(), 'pgrelay-dashboard-vite-'));
  vite = await createServer({
    configFile: here('../vite.config.ts'),
    cacheDir,
    logLevel: 'warn',
    clearScreen: false,
    server: { host: '127.0.0.1', port, strictPort: true, watch: null },
  });
  await vite.listen();
  viteUrl = `http://127.0.0.1:${port}`;
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  // Warm up before the leak guard's baseline: Vite optimizes dependencies and transforms every module on the first load.
  const page = await browser.newPage();
  await page.goto(`${viteUrl}/`);
  await page.getByText('No token').waitFor({ timeout: 60_000 });
  await page.close();
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await vite?.close();
  for (const p of relays) {
    p.signal('SIGKILL');
    await p.exited;
  }
  if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
});
leakGuard(() => db.name);

async function startRelay(port: number): Promise<CliProcess> {
  const p = runCli(['start'], { DATABASE_URL: db.relayUrl, PORT: String(port), HOST: '127.0.0.1', RELAY_JWT_SECRET: SECRET, LOG_LEVEL: 'info' });
  relays.push(p);
  await p.waitFor(/pgrelay listening on/, 60_000); // tsx compiles the CLI at start: slow on a busy 2-core machine
  return p;
}

/** What the page must show for the database's current rows: the first four cells of each row (newest first), the revenue and the badge. */
async function expected(): Promise<{ rows: string[][]; revenue: string }> {
  const { rows } = await db.query<{ row: Record<string, string> }>(`select row from relay.snapshot('orders', 'acme') order by (row->>'id')::bigint desc`);
  const cents = rows.filter(({ row }) => row.status !== 'cancelled').reduce((sum, { row }) => sum + Math.round(Number(row.total) * 100), 0);
  return { rows: rows.map(({ row }) => [row.id!, row.customer!, money.format(Number(row.total)), row.status!]), revenue: money.format(cents / 100) };
}

/** What the page shows (runs in the page). */
function shown() {
  return {
    badge: document.querySelector('.badge')?.textContent,
    rows: [...document.querySelectorAll('tbody tr')].map((tr) => [...(tr as HTMLTableRowElement).cells].slice(0, 4).map((td) => td.textContent)),
    revenue: document.querySelector('#revenue')?.textContent,
  };
}

/** Waits until the page shows exactly the database's rows with the badge `open`; the error says what it showed instead. */
async function showsDatabase(page: Page, timeoutMs: number): Promise<void> {
  const { rows, revenue } = await expected();
  const goal = JSON.stringify({ badge: 'open', rows, revenue });
  try {
    await page.waitForFunction(`JSON.stringify((${shown})()) === ${JSON.stringify(goal)}`, undefined, { timeout: timeoutMs, polling: 'raf' });
  } catch {
    throw new Error(`the page did not show the database within ${timeoutMs} ms:\n  want ${goal}\n  got  ${JSON.stringify(await page.evaluate(shown))}`);
  }
}

describe('dashboard example in Chromium', () => {
  const title = 'shows the seeded rows, follows inserts, updates and deletes from frames alone, and catches up after a relay restart';
  if (!haveChromium) {
    it.skip(`${title} (skipped: ${skipReason})`, () => {});
    return;
  }
  it(title, async () => {
    const port = await freePort();
    const relayUrl = `ws://127.0.0.1:${port}/ws`;
    const first = await startRelay(port);
    const context = await browser!.newContext({ viewport: { width: 1100, height: 720 } });
    let second: CliProcess | undefined;
    try {
      const page = await context.newPage();
      const requests: string[] = [];
      const frames: Array<{ type: string; seq?: number; changes?: Array<{ op: string; row: { customer?: string } | null }> }> = [];
      const sent: Array<{ type: string; since?: number; snapshot?: boolean }> = [];
      const errors: string[] = [];
      page.on('request', (r) => requests.push(`${r.method()} ${r.url()}`));
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('websocket', (ws) => {
        if (!ws.url().startsWith(relayUrl)) return;
        ws.on('framereceived', (f) => frames.push(JSON.parse(String(f.payload))));
        ws.on('framesent', (f) => sent.push(JSON.parse(String(f.payload))));
      });
      const changed = (op: string, customer: string) => frames.some((f) => f.type == 'tx' && f.changes!.some((c) => c.op == op && c.row?.customer == customer));

      await page.goto(`${viteUrl}/?relay=${encodeURIComponent(relayUrl)}&token=${await token({ tenant_id: 'acme' })}`);
      await showsDatabase(page, 30_000);
      expect((await expected()).rows).toHaveLength(5); // schema.sql's acme rows, and not globex's
      const loaded = requests.length;
      expect(requests.some((r) => r.endsWith('/main.tsx'))).toBe(true); // the counter sees the page's own HTTP requests

      // Each plain-SQL write is on the page within a second, carried by a frame.
      await db.query(`insert into orders (tenant_id, customer, total) values ('acme', 'Katherine Johnson', 64.00), ('globex', 'Mr Burns', 1.00)`);
      await showsDatabase(page, 1000);
      await db.query(`update orders set status = 'paid', total = 80.00 where customer = 'Grace Hopper'`);
      await showsDatabase(page, 1000);
      await db.query(`delete from orders where customer = 'Edsger Dijkstra'`);
      await showsDatabase(page, 1000);
      // DevTools reports a frame on its own path, which can lag behind the page's render of it: wait for the report.
      const carried = () => [changed('insert', 'Katherine Johnson'), changed('update', 'Grace Hopper'), changed('delete', 'Edsger Dijkstra')];
      await expect.poll(carried, { timeout: 5000 }).toEqual([true, true, true]);
      expect(requests.slice(loaded)).toEqual([]);

      // The relay dies; what is committed meanwhile shows once a new relay runs on the same port.
      first.signal('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      await page.locator('.badge', { hasText: 'reconnecting' }).waitFor({ timeout: 10_000 });
      await db.query(`begin;
        insert into orders (tenant_id, customer, total, status) values ('acme', 'Hedy Lamarr', 15.00, 'open');
        update orders set total = 130.00 where customer = 'Ada Lovelace';
        delete from orders where customer = 'Barbara Liskov';
        commit`);
      await db.query(`update orders set status = 'cancelled' where customer = 'Alan Turing'`);
      second = await startRelay(port);
      // The page's client waits out its backoff (full jitter, up to 30 s by default) before it tries again.
      await showsDatabase(page, 45_000);
      await expect.poll(() => changed('insert', 'Hedy Lamarr'), { timeout: 5000 }).toBe(true);
      // It resumed from its cursor: one snapshot in all, and the second subscribe asks only for what came after.
      expect(frames.filter((f) => f.type == 'snapshot')).toHaveLength(1);
      const subscribes = sent.filter((m) => m.type == 'subscribe');
      expect(subscribes).toHaveLength(2);
      expect([subscribes[0]!.snapshot, subscribes[1]!.snapshot, typeof subscribes[1]!.since]).toEqual([true, undefined, 'number']);
      expect(requests.slice(loaded)).toEqual([]);
      expect(errors).toEqual([]);

      mkdirSync(path.dirname(screenshot), { recursive: true });
      await page.screenshot({ path: screenshot, fullPage: true });
    } finally {
      await context.close();
      for (const p of [second, first]) {
        p?.signal('SIGTERM');
        await p?.exited;
      }
    }
  }, 240_000);

  it('issue 14: shows who is looking at the orders, each person once however many tabs they have open', async () => {
    const port = await freePort();
    const relay = await startRelay(port);
    const context = await browser!.newContext({ viewport: { width: 1100, height: 420 } });
    try {
      const open = async (sub: string, name: string) => {
        const page = await context.newPage();
        await page.goto(`${viteUrl}/?relay=${encodeURIComponent(`ws://127.0.0.1:${port}/ws`)}&token=${await token({ tenant_id: 'acme', sub, name })}`);
        return page;
      };
      const viewers = (page: Page, text: string) => page.locator('#viewers', { hasText: new RegExp(`^${text}$`) }).waitFor({ timeout: 30_000 });
      const ada = await open('u-ada', 'Ada');
      await viewers(ada, 'Ada');
      const grace = await open('u-grace', 'Grace');
      await viewers(grace, 'Ada, Grace');
      await viewers(ada, 'Ada, Grace');
      const adaAgain = await open('u-ada', 'Ada');
      await viewers(adaAgain, 'Ada, Grace');
      await grace.close();
      await viewers(ada, 'Ada');
      await ada.close();
      // Ada's other tab keeps her there
      await new Promise((r) => setTimeout(r, 500));
      expect(await adaAgain.locator('#viewers').textContent()).toBe('Ada');
      mkdirSync(path.dirname(screenshot), { recursive: true });
      await adaAgain.screenshot({ path: here('./artifacts/dashboard-viewers.png'), fullPage: true });
    } finally {
      await context.close();
      relay.signal('SIGTERM');
      await relay.exited;
    }
  }, 120_000);

  it('shows why a token was refused instead of "Loading…"', async () => {
    const port = await freePort();
    const relay = await startRelay(port);
    const context = await browser!.newContext({ viewport: { width: 1100, height: 420 } });
    try {
      const page = await context.newPage();
      const wrong = await token({ tenant_id: 'acme' }, { secret: 'another-secret-another-secret-another-secret' });
      await page.goto(`${viteUrl}/?relay=${encodeURIComponent(`ws://127.0.0.1:${port}/ws`)}&token=${wrong}`);
      await page.getByRole('alert').filter({ hasText: 'The relay refused the token: token signature invalid.' }).waitFor({ timeout: 30_000 });
      expect(await page.locator('.badge').textContent()).toBe('closed');
      expect(await page.getByText('Loading…').count()).toBe(0);
      mkdirSync(path.dirname(screenshot), { recursive: true });
      await page.screenshot({ path: here('./artifacts/dashboard-bad-token.png'), fullPage: true });
    } finally {
      await context.close();
      relay.signal('SIGTERM');
      await relay.exited;
    }
  }, 120_000);
});
