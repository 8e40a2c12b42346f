// A slow consumer is closed with 4008 once it falls RELAY_MAX_BACKPRESSURE behind, while other clients keep full speed.
import { beforeAll, describe, expect, it } from 'vitest';
import { leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { connect, httpGet, metric, startTestRelay, token, type TestRelay } from './support/relay-harness.js';

const db = useTestDatabase();
let relay: TestRelay;

beforeAll(async () => {
  await db.query(`create table blobs (id serial primary key, tenant_id text not null, body text); select relay.watch('blobs', 'tenant_id')`);
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
    const { rows } = await db.query(`select max(seq)::int as seq from relay.transactions`);
    const t1 = Date.now();
    await fast.until(() => fast.txs('b').at(-1)?.seq === rows[0]!.seq, 20_000, 'the fast client to get everything');
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
});
