// A slow consumer is closed with 4008 once it falls RELAY_MAX_BACKPRESSURE behind, while other clients keep full speed.
import { beforeAll, describe, expect, it } from 'vitest';
import { createTenantTable, leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { allNumbered, connect, httpGet, metric, startTestRelay, token, type TestRelay } from './support/relay-harness.js';

const db = useTestDatabase();
let relay: TestRelay;

beforeAll(async () => {
  await createTenantTable(db, 'blobs', { columns: { body: 'text' } });
  relay = await startTestRelay(db, { RELAY_MAX_BACKPRESSURE: '256kb' });
});
leakGuard(() => db.name);

describe('backpressure', () => {
  it('closes the slow socket with 4008 and keeps the fast one at full speed', async () => {
    const tok = await token({ tenant_id: 't' });
    const slow = await connect(relay.url, tok);
    const fast = await connect(relay.url, tok);
    for (const c of [slow, fast]) {
      c.send({ type: 'subscribe', id: 'b', table: 'blobs' });
      await c.next((f) => f.type === 'subscribed');
    }
    (slow.ws as any)._socket.pause(); // stop reading: the kernel buffers fill, then the relay's
    const c = await db.connect();
    const body = 'x'.repeat(20_000);
    const t0 = Date.now();
    let slowClosedAt = 0;
    for (let i = 0; i < 1500; i++) {
      await c.query(`insert into blobs (tenant_id, body) values ('t', $1)`, [body]);
      if (!slowClosedAt && i % 20 === 0 && metric((await httpGet(`${relay.http}/metrics`)).body, 'pgrelay_backpressure_closes_total') === 1) {
        slowClosedAt = i;
        (slow.ws as any)._socket.resume(); // read again: the close frame waits behind what was buffered
      }
    }
    const committedIn = Date.now() - t0;
    await c.end();
    expect(slowClosedAt).toBeGreaterThan(0);
    // the last seq once the ticker numbered every commit (max(seq) read now could stop short of the last ones)
    const last = await allNumbered(db);
    const t1 = Date.now();
    await fast.until(() => fast.txs('b').at(-1)?.seq === last, 20_000, 'the fast client to get everything');
    const fastLag = Date.now() - t1;
    expect(fast.txs('b')).toHaveLength(1500);
    expect(fastLag).toBeLessThan(Math.max(2000, committedIn)); // it was never held back by the slow one
    const text = (await httpGet(`${relay.http}/metrics`)).body;
    expect(metric(text, 'pgrelay_backpressure_closes_total')).toBe(1);
    expect(await slow.closed).toEqual({ code: 4008, reason: 'too slow: resume from your cursor' });
    // what it did receive is a gap-free prefix: it resumes from its cursor
    const got = slow.txs('b').map((f) => f.seq);
    expect(got).toEqual(fast.txs('b').slice(0, got.length).map((f) => f.seq));
    await fast.close();
  }, 60_000);

  it('closes a socket the moment a frame leaves it over the limit, far below the point where uWebSockets.js skips frames (rows of 300 kB)', async () => {
    // uWebSockets.js skips frames for a socket over its hard limit (4 × ours) and closes it only later; a socket that
    // drained in between took the next frames, and its client lost the skipped ones for good (the long chaos run).
    // Checked only every 100 ms, a socket fed 300 kB rows went far past that limit; checked after every frame, it is
    // closed with at most one frame over RELAY_MAX_BACKPRESSURE (256 kB).
    const start = (await httpGet(`${relay.http}/metrics`)).body;
    const before = metric(start, 'pgrelay_backpressure_closes_total');
    const sumBefore = metric(start, 'pgrelay_backpressure_close_buffered_bytes_sum');
    const tok = await token({ tenant_id: 'big' });
    const slow = await connect(relay.url, tok);
    slow.send({ type: 'subscribe', id: 'b', table: 'blobs' });
    await slow.next((f) => f.type === 'subscribed');
    (slow.ws as any)._socket.pause();
    // rounds of 10 writers committing at once: the ticker numbers them in one batch, published in one stretch
    const writers = await Promise.all(Array.from({ length: 10 }, () => db.connect()));
    const body = 'y'.repeat(300_000);
    try {
      for (let i = 0; i < 40 && metric((await httpGet(`${relay.http}/metrics`)).body, 'pgrelay_backpressure_closes_total') === before; i++) {
        await Promise.all(writers.map((w) => w.query(`insert into blobs (tenant_id, body) values ('big', $1)`, [body])));
      }
    } finally {
      await Promise.all(writers.map((w) => w.end()));
    }
    const text = (await httpGet(`${relay.http}/metrics`)).body;
    expect(metric(text, 'pgrelay_backpressure_closes_total')).toBe(before + 1);
    const buffered = metric(text, 'pgrelay_backpressure_close_buffered_bytes_sum') - sumBefore;
    expect(buffered).toBeGreaterThan(256 * 1024);
    expect(buffered).toBeLessThan(256 * 1024 + 2 * 300_000);
    (slow.ws as any)._socket.resume();
    expect((await slow.closed).code).toBe(4008);
    const got = slow.txs('b').filter((f) => !f.more).map((f) => f.seq as number);
    const { rows } = await db.query<{ seq: number }>(`select t.seq::int as seq from relay.transactions t join relay.changes ch using (txid)
      where ch.tenant = 'big' order by t.seq`);
    expect(got).toEqual(rows.slice(0, got.length).map((r) => r.seq));
  }, 90_000);
});
