// The dashboard example in Chromium where WebSockets cannot pass (issue 14): a proxy in front of a real relay process refuses
// every upgrade, the page's client falls back to Server-Sent Events by itself, shows every change, and after a relay SIGKILL
// and restart resumes with each insert committed before, during and after the outage carried exactly once.
import { describe, expect } from 'vitest';
import { startTestProxy, type TestProxy } from '../../../client/__tests__/support/test-proxy.js';
import { sseParser } from '../../../client/sse-socket.js';
import { freePort } from '../../../client/shared/free-port.js';
import { leakGuard, useTestDatabase } from '../../../db/testing/index.js';
import type { CliProcess } from '../../../relay/__tests__/support/cli-process.js';
import { token } from '../../../relay/__tests__/support/relay-harness.js';
import { haveChromium, itInChromium, screenshot, skipReason } from '../../../relay/__tests__/support/chromium.js';
import { artifact, showsDatabase, useDashboard } from './support/dashboard-page.js';

if (!haveChromium) console.warn(`dashboard.sse-fallback.test.ts skipped: ${skipReason}`);

const db = useTestDatabase();
const dashboard = useDashboard(db);
leakGuard(() => db.name);

/** Runs in the page before its scripts: keeps a copy of every `/sse` response's text in `window.sseTaps`, the page's client reading the other. */
function tapSse() {
  const taps: Array<{ url: string; text: string }> = ((window as any).sseTaps = []);
  const original = window.fetch;
  window.fetch = async (input, init) => {
    const r = await original(input, init);
    const url = String(input instanceof Request ? input.url : input);
    if (!url.includes('/sse') || !r.body) return r;
    const [mine, theirs] = r.body.tee();
    const tap = { url, text: '' };
    taps.push(tap);
    void (async () => {
      const reader = mine.getReader();
      const text = new TextDecoder();
      try {
        for (let x; !(x = await reader.read()).done; ) tap.text += text.decode(x.value, { stream: true });
      } catch {}
    })();
    return new Response(theirs, { status: r.status, statusText: r.statusText, headers: r.headers });
  };
}

type Frame = { type: string; seq?: number; more?: boolean; changes?: Array<{ op: string; row: { customer?: string } | null }> };

describe('dashboard example in Chromium, WebSockets refused', () => {
  itInChromium('falls back to SSE, shows every change, and resumes after a relay SIGKILL with each insert carried exactly once', async () => {
    const port = await freePort();
    const first = await dashboard.startRelay(port);
    let proxy: TestProxy | undefined;
    let second: CliProcess | undefined;
    const context = await dashboard.browser().newContext({ viewport: { width: 1100, height: 900 } });
    try {
      proxy = await startTestProxy(port, { websockets: false });
      await context.addInitScript(tapSse);
      const page = await context.newPage();
      const errors: string[] = [];
      let wsFrames = 0;
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('websocket', (ws) => ws.url().startsWith(proxy!.url) && ws.on('framereceived', () => void wsFrames++));

      await page.goto(dashboard.pageUrl(proxy.url, await token({ tenant_id: 'acme' })));
      await showsDatabase(db, page, 30_000);
      // Two refused upgrades, each followed by a token check over HTTP that passed: SSE for the page's life.
      expect(proxy.count('upgrade refused')).toBe(2);

      const names: string[] = [];
      const insert = async (phase: string, n: number, waitMs?: number) => {
        for (let i = 0; i < n; i++) {
          names.push(`${phase} ${i}`);
          await db.query(`insert into orders (tenant_id, customer, total) values ('acme', $1, $2), ('globex', $1, 1)`, [`${phase} ${i}`, i + 1]);
          if (waitMs) await showsDatabase(db, page, waitMs); // each on the page, carried by an SSE event
        }
      };
      // Each shows by itself, usually well within a second; 10 s of room because a 2-core machine running the other browser
      // test and relays alongside once took over 2 s (a lost change would never show, however long the wait).
      await insert('before', 5, 10_000);
      await db.query(`update orders set status = 'paid' where customer = 'Grace Hopper'`);
      await db.query(`delete from orders where customer = 'Edsger Dijkstra'`);
      await showsDatabase(db, page, 10_000);

      first.signal('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      await page.locator('.badge', { hasText: 'reconnecting' }).waitFor({ timeout: 10_000 });
      await insert('during', 5);
      second = await dashboard.startRelay(port);
      // The page's client waits out its backoff (at most 3 × 500 ms for a minute after a drop) before it tries again.
      await showsDatabase(db, page, 45_000);
      await insert('after', 5, 10_000);

      // Count what came over SSE: each insert in exactly one transaction frame, over all streams; one snapshot in all.
      const frames: Frame[] = [];
      const taps: Array<{ url: string; text: string }> = await page.evaluate(() => (window as any).sseTaps);
      for (const t of taps) sseParser((d) => frames.push(JSON.parse(d)))(t.text);
      const inserted = frames.filter((f) => f.type == 'tx').flatMap((f) => f.changes!.filter((c) => c.op == 'insert').map((c) => c.row!.customer!));
      expect(inserted.sort()).toEqual([...names].sort());
      expect(frames.filter((f) => f.type == 'snapshot')).toHaveLength(1);
      const seqs = frames.filter((f) => f.type == 'tx').map((f) => f.seq!);
      expect(new Set(seqs).size).toBe(seqs.length);
      // The streams: a token check and the subscription, before and after the restart (and failed attempts while no relay ran).
      expect(taps.filter((t) => t.url.includes('table=')).length).toBeGreaterThanOrEqual(2);
      expect(wsFrames).toBe(0);
      expect(proxy.count('upgrade refused')).toBe(2); // no WebSocket attempt after the restart
      expect(errors).toEqual([]);

      await screenshot(page, artifact('dashboard-sse.png'));
    } finally {
      await context.close();
      await proxy?.close();
      for (const p of [second, first]) {
        p?.signal('SIGTERM');
        await p?.exited;
      }
    }
  }, 240_000);
});
