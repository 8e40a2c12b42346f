// What the dashboard's Chromium tests share: the Vite dev server and Chromium for the file, relays started as the CLI,
// and the check that the page shows exactly the database's rows.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll } from 'vitest';
import { freePort } from '../../../../client/shared/free-port.js';
import type { TestDatabase } from '../../../../db/testing/index.js';
import { haveChromium, launchChromium } from '../../../../relay/__tests__/support/chromium.js';
import { useCliProcesses, type CliProcess } from '../../../../relay/__tests__/support/cli-process.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
/** A path in the tests' artifacts directory (screenshots). */
export const artifact = (name: string) => here(`../artifacts/${name}`);
const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });

export interface Dashboard {
  browser(): Browser;
  /** A relay as a user starts it (`pgrelay start`) on `port`; killed after the file if still running. */
  startRelay(port: number): Promise<CliProcess>;
  /** The page's URL for a relay at `relayUrl` (ws://…/ws) and a token. */
  pageUrl(relayUrl: string, token: string): string;
  /**
   * Runs `test` with a relay of its own on a free port (as startRelay) and a browser context of `viewport`; then closes
   * the context and stops the relay (SIGTERM).
   */
  withRelay(viewport: { width: number; height: number }, test: (port: number, context: BrowserContext) => Promise<void>): Promise<void>;
}

/** Loads the example's schema into `db`, and (with Chromium) starts Vite and Chromium for the file. */
export function useDashboard(db: TestDatabase): Dashboard {
  const cli = useCliProcesses();
  let vite: ViteDevServer | undefined;
  let viteUrl = '';
  let cacheDir: string | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    // The example's own schema: the table, relay.watch and the seed rows a new user gets.
    await db.query(readFileSync(here('../../schema.sql'), 'utf8'));
    if (!haveChromium) return;
    // Vite turns port 0 into 5173, so take a free port; a cache of its own keeps a concurrent dev server's dependency cache out of the way.
    const port = await freePort();
    cacheDir = mkdtempSync(path.join(tmpdir(), 'pgrelay-dashboard-vite-'));
    vite = await createServer({
      configFile: here('../../vite.config.ts'),
      cacheDir,
      logLevel: 'warn',
      clearScreen: false,
      server: { host: '127.0.0.1', port, strictPort: true, watch: null },
    });
    await vite.listen();
    viteUrl = `http://127.0.0.1:${port}`;
    browser = await launchChromium(['--disable-quic']);
    // Warm up before the leak guard's baseline: Vite optimizes dependencies and transforms every module on the first load.
    const page = await browser.newPage();
    await page.goto(`${viteUrl}/`);
    await page.getByText('No token').waitFor({ timeout: 60_000 });
    await page.close();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await vite?.close();
    if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
  });

  return {
    browser: () => browser!,
    startRelay: (port) => cli.startRelay(db, port),
    pageUrl: (relayUrl, token) => `${viteUrl}/?relay=${encodeURIComponent(relayUrl)}&token=${token}`,
    async withRelay(viewport, test) {
      const port = await freePort();
      const relay = await cli.startRelay(db, port);
      const context = await browser!.newContext({ viewport });
      try {
        await test(port, context);
      } finally {
        await context.close();
        relay.signal('SIGTERM');
        await relay.exited;
      }
    },
  };
}

/**
 * What the page must show for the database's current rows: the first four cells of each row (newest first), the revenue
 * and the badge. Read from the table itself, not relay.snapshot: a snapshot is exact at the ticker's last position, so
 * one read right after a commit the ticker has not numbered yet leaves that row out, and the page, which gets it a moment
 * later, could never match (issue 26: a run failed showing "one more row" than expected).
 */
export async function expected(db: TestDatabase): Promise<{ rows: string[][]; revenue: string }> {
  const { rows } = await db.query<{ id: string; customer: string; total: string; status: string }>(
    `select id::text, customer, total::text, status from orders where tenant_id = 'acme' order by orders.id desc`);
  const cents = rows.filter((row) => row.status !== 'cancelled').reduce((sum, row) => sum + Math.round(Number(row.total) * 100), 0);
  return { rows: rows.map((row) => [row.id, row.customer, money.format(Number(row.total)), row.status]), revenue: money.format(cents / 100) };
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
export async function showsDatabase(db: TestDatabase, page: Page, timeoutMs: number): Promise<void> {
  const { rows, revenue } = await expected(db);
  const goal = JSON.stringify({ badge: 'open', rows, revenue });
  try {
    await page.waitForFunction(`JSON.stringify((${shown})()) === ${JSON.stringify(goal)}`, undefined, { timeout: timeoutMs, polling: 'raf' });
  } catch {
    throw new Error(`the page did not show the database within ${timeoutMs} ms:\n  want ${goal}\n  got  ${JSON.stringify(await page.evaluate(shown))}`);
  }
}
