// Resume: every missed transaction once, in order, then live with no gap or duplicate at the hand-over; ring and log paths; resets.
import { beforeAll, describe, expect, it } from 'vitest';
import { createOrders, insertOrder, leakGuard, sleep, useTestDatabase, writeOrders } from '../../db/testing/index.js';
import { allNumbered, connect, httpGet, metric, startTestRelay, token, type TestClient, type TestRelay } from './support/relay-harness.js';

const db = useTestDatabase();
let ringRelay: TestRelay;
let logRelay: TestRelay;

beforeAll(async () => {
  await createOrders(db, { columns: { n: 'int' } });
  ringRelay = await startTestRelay(db);
  logRelay = await startTestRelay(db, { RELAY_HISTORY_TX: '50' });
});
leakGuard(() => db.name);

async function tenantSeqsAfter(cursor: number, tenant = 'a'): Promise<number[]> {
  const { rows } = await db.query(`select distinct t.seq::int as seq from relay.transactions t join relay.changes c using (txid)
    where c.tenant = $1 and t.seq > $2 order by 1`, [tenant, cursor]);
  return rows.map((r) => r.seq);
}

async function resumeScenario(relay: TestRelay, expectedSource: 'ring' | 'log'): Promise<void> {
  const tok = await token({ tenant_id: 'a' });
  const first = await connect(relay.url, tok);
  first.send({ type: 'subscribe', id: 'o', table: 'orders' });
  await first.next((f) => f.type === 'subscribed');
  await db.query(`insert into orders (tenant_id, n) select 'a', g from generate_series(1, 3) g`);
  await first.until(() => first.txs('o').length >= 1);
  const cursor = first.txs('o').at(-1)!.seq as number;
  await first.close();

  // 1,000 transactions while the client is away
  const c = await db.connect();
  for (let i = 0; i < 1000; i++) await insertOrder(c, { tenant_id: i % 2 ? 'a' : 'b', n: i });
  await c.end();

  const before = metric((await httpGet(`${relay.http}/metrics`)).body, 'pgrelay_replays_total', `{source="${expectedSource}"}`);
  // single-row transactions for tenants a and b until stopped
  const writer = writeOrders(db, (n) => (n % 2 ? 'a' : 'b'));
  const second = await connect(relay.url, tok);
  second.send({ type: 'subscribe', id: 'o', table: 'orders', since: cursor });
  expect(await second.next((f) => f.type === 'subscribed')).toEqual({ type: 'subscribed', id: 'o', seq: cursor });
  await sleep(300); // live frames keep coming during and after the hand-over
  await writer.stop();
  await allNumbered(db); // the ticker numbers the writer's last commits a moment after they commit
  const expected = await tenantSeqsAfter(cursor);
  await second.until(() => second.txs('o').at(-1)?.seq === expected.at(-1), 15_000, 'the last transaction');
  const got = second.txs('o').map((f) => f.seq as number);
  expect(got.length).toBe(expected.length);
  expect(got).toEqual(expected); // once each, in order
  expect(second.txs('o').every((f) => f.changes.every((ch: any) => ch.row.tenant_id === 'a'))).toBe(true);
  expect(metric((await httpGet(`${relay.http}/metrics`)).body, 'pgrelay_replays_total', `{source="${expectedSource}"}`)).toBe(before + 1);
  await second.close();
}

describe('resume with since', () => {
  it('replays 1,000 missed transactions from the ring, then live, with writes continuing', async () => {
    await resumeScenario(ringRelay, 'ring');
  }, 60_000);

  it('replays from the log when the cursor is older than the ring', async () => {
    await resumeScenario(logRelay, 'log');
  }, 60_000);

  it('resets a cursor older than the retained history, and one ahead of the log', async () => {
    const { rows } = await db.query(`select max(seq)::int as max from relay.transactions`);
    await db.query(`update relay.transactions set committed_at = now() - interval '30 days' where seq <= $1`, [rows[0]!.max - 10]);
    await db.query(`select relay.prune('7 days')`);
    const client: TestClient = await connect(logRelay.url, await token({ tenant_id: 'a' }));
    client.send({ type: 'subscribe', id: 'old', table: 'orders', since: 5 });
    expect(await client.next((f) => f.type === 'reset')).toEqual({ type: 'reset', sub: 'old', reason: 'cursor_expired', seq: expect.any(Number) });
    client.send({ type: 'subscribe', id: 'ahead', table: 'orders', since: 1e12 });
    expect(await client.next((f) => f.type === 'reset')).toEqual({ type: 'reset', sub: 'ahead', reason: 'cursor_ahead', seq: rows[0]!.max });
    // after a reset the same id subscribes again (no duplicate_subscription)
    client.send({ type: 'subscribe', id: 'old', table: 'orders', since: rows[0]!.max - 5 });
    expect(await client.next((f) => f.type === 'subscribed')).toMatchObject({ id: 'old' });
    await client.close();
  });
});
