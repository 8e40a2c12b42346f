// The dashboard example in Chromium: a real relay process, the Vite dev server and plain-SQL writes. Rows change from
// WebSocket frames alone (no HTTP after the page has loaded), also across a relay killed with SIGKILL and started again.
import type { Page } from 'playwright-core';
import { expect, describe } from 'vitest';
import { freePort } from '../../../client/shared/free-port.js';
import { leakGuard, sleep, useTestDatabase } from '../../../db/testing/index.js';
import type { CliProcess } from '../../../relay/__tests__/support/cli-process.js';
import { token } from '../../../relay/__tests__/support/relay-harness.js';
import { haveChromium, itInChromium, screenshot, skipReason } from '../../../relay/__tests__/support/chromium.js';
import { artifact, expected, showsDatabase, useDashboard } from './support/dashboard-page.js';

if (!haveChromium) console.warn(`dashboard.browser.test.ts skipped: ${skipReason}`);

const db = useTestDatabase();
const dashboard = useDashboard(db);
leakGuard(() => db.name);

describe('dashboard example in Chromium', () => {
  itInChromium('shows the seeded rows, follows inserts, updates and deletes from frames alone, and catches up after a relay restart', async () => {
    const port = await freePort();
    const relayUrl = `ws://127.0.0.1:${port}/ws`;
    const first = await dashboard.startRelay(port);
    const context = await dashboard.browser().newContext({ viewport: { width: 1100, height: 720 } });
    let second: CliProcess | undefined;
    try {
      const page = await context.newPage();
      const requests: string[] = [];
      const frames: Array<{ type: string; seq?: number; changes?: Array<{ op: string; row: { customer?: string } | null }> }> = [];
      const sent: Array<{ type: string; since?: number; snapshot?: boolean }> = [];
      const errors: string[] = [];
      // The client's transport is `auto`: while no relay runs, each failed WebSocket is followed by an SSE attempt (which
      // fails too, so the client stays on WebSockets). Those are the client's, not the page's own requests.
      const sse = `http://127.0.0.1:${port}/sse`;
      const sseAnswered: string[] = [];
      page.on('request', (r) => r.url().startsWith(sse) || requests.push(`${r.method()} ${r.url()}`));
      page.on('requestfinished', (r) => r.url().startsWith(sse) && sseAnswered.push(r.url()));
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('websocket', (ws) => {
        if (!ws.url().startsWith(relayUrl)) return;
        ws.on('framereceived', (f) => frames.push(JSON.parse(String(f.payload))));
        ws.on('framesent', (f) => sent.push(JSON.parse(String(f.payload))));
      });
      const changed = (op: string, customer: string) => frames.some((f) => f.type == 'tx' && f.changes!.some((c) => c.op == op && c.row?.customer == customer));

      await page.goto(dashboard.pageUrl(relayUrl, await token({ tenant_id: 'acme' })));
      await showsDatabase(db, page, 30_000);
      expect((await expected(db)).rows).toHaveLength(5); // schema.sql's acme rows, and not globex's
      const loaded = requests.length;
      expect(requests.some((r) => r.endsWith('/main.tsx'))).toBe(true); // the counter sees the page's own HTTP requests

      // Each plain-SQL write is on the page within a second, carried by a frame.
      await db.query(`insert into orders (tenant_id, customer, total) values ('acme', 'Katherine Johnson', 64.00), ('globex', 'Mr Burns', 1.00)`);
      await showsDatabase(db, page, 1000);
      await db.query(`update orders set status = 'paid', total = 80.00 where customer = 'Grace Hopper'`);
      await showsDatabase(db, page, 1000);
      await db.query(`delete from orders where customer = 'Edsger Dijkstra'`);
      await showsDatabase(db, page, 1000);
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
      second = await dashboard.startRelay(port);
      // The page's client waits out its backoff (full jitter, up to 30 s by default) before it tries again.
      await showsDatabase(db, page, 45_000);
      await expect.poll(() => changed('insert', 'Hedy Lamarr'), { timeout: 5000 }).toBe(true);
      // It resumed from its cursor: one snapshot in all, and the second subscribe asks only for what came after.
      expect(frames.filter((f) => f.type == 'snapshot')).toHaveLength(1);
      const subscribes = sent.filter((m) => m.type == 'subscribe');
      expect(subscribes).toHaveLength(2);
      expect([subscribes[0]!.snapshot, subscribes[1]!.snapshot, typeof subscribes[1]!.since]).toEqual([true, undefined, 'number']);
      expect(requests.slice(loaded)).toEqual([]);
      expect(sseAnswered).toEqual([]);
      expect(errors).toEqual([]);

      await screenshot(page, artifact('dashboard.png'));
    } finally {
      await context.close();
      for (const p of [second, first]) {
        p?.signal('SIGTERM');
        await p?.exited;
      }
    }
  }, 240_000);

  itInChromium('issue 14: shows who is looking at the orders, each person once however many tabs they have open', () =>
    dashboard.withRelay({ width: 1100, height: 420 }, async (port, context) => {
      const open = async (sub: string, name: string) => {
        const page = await context.newPage();
        await page.goto(dashboard.pageUrl(`ws://127.0.0.1:${port}/ws`, await token({ tenant_id: 'acme', sub, name })));
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
      await sleep(500);
      expect(await adaAgain.locator('#viewers').textContent()).toBe('Ada');
      await screenshot(adaAgain, artifact('dashboard-viewers.png'));
    }),
  120_000);

  itInChromium('shows why a token was refused instead of "Loading…"', () =>
    dashboard.withRelay({ width: 1100, height: 420 }, async (port, context) => {
      const page = await context.newPage();
      const wrong = await token({ tenant_id: 'acme' }, { secret: 'another-secret-another-secret-another-secret' });
      await page.goto(dashboard.pageUrl(`ws://127.0.0.1:${port}/ws`, wrong));
      await page.getByRole('alert').filter({ hasText: 'The relay refused the token: token signature invalid.' }).waitFor({ timeout: 30_000 });
      expect(await page.locator('.badge').textContent()).toBe('closed');
      expect(await page.getByText('Loading…').count()).toBe(0);
      await screenshot(page, artifact('dashboard-bad-token.png'));
    }),
  120_000);
});
