// A relay at rest (issue 22): with a subscriber and nothing written, its ticker sleeps and sends about one statement a
// second to Postgres; the first change after the rest reaches the subscriber; /metrics says the ticker is asleep.
import { beforeAll, describe, expect, it } from 'vitest';
import { createOrders, leakGuard, sleep, until, useTestDatabase } from '../../db/testing/index.js';
import { connect, httpGet, metric, startTestRelay, subscribeAnswer, token, type TestRelay } from './support/relay-harness.js';

const db = useTestDatabase();
leakGuard(() => db.name);

let relay: TestRelay;
beforeAll(async () => {
  await createOrders(db, { id: 'bigserial primary key', columns: { note: 'text' } });
  relay = await startTestRelay(db);
});

async function metrics(): Promise<string> {
  return (await httpGet(`${relay.http}/metrics`)).body;
}

describe('a relay at rest', () => {
  it("sleeps with a subscriber connected, sends about a statement a second, and wakes for the first change", async () => {
    const c = await connect(relay.url, await token({ tenant_id: 'acme' }));
    try {
      expect((await subscribeAnswer(c, 's1', 'orders')).type).toBe('subscribed');
      await until(async () => metric(await metrics(), 'pgrelay_ticker_asleep') === 1, { what: 'the ticker to fall asleep', timeoutMs: 10_000, intervalMs: 50 });
      expect(metric(await metrics(), 'pgrelay_ticker_leader')).toBe(1);
      // just after it fell asleep it looks again a few times, 1, 2, 4 … ms apart, while a transaction older than its
      // sleep is running anywhere on the server (other test files write meanwhile): count after that
      await sleep(2_000);
      const before = metric(await metrics(), 'pgrelay_ticker_statements_total');
      await sleep(4_000);
      const sent = metric(await metrics(), 'pgrelay_ticker_statements_total') - before;
      console.log(`relay at rest: its ticker sent ${sent} statements in 4 s`);
      expect(sent).toBeGreaterThanOrEqual(3);
      expect(sent).toBeLessThanOrEqual(6);
      expect(metric(await metrics(), 'pgrelay_ticker_asleep')).toBe(1);

      await db.query(`insert into orders (tenant_id, note) values ('acme', 'after the rest')`);
      const tx = await c.next((f) => f.type === 'tx', 5_000);
      expect(tx.changes[0].row.note).toBe('after the rest');
    } finally {
      await c.close();
    }
  });
});
