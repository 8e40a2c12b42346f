// A relay fills its ring at start with what the ring can hold, by count and by bytes: it reads the newest transactions
// first and stops there, instead of reading back RELAY_HISTORY_TX transactions whatever their size (20,000 transactions
// of megabyte rows to keep the last 64 MiB of them made starts take minutes in the long chaos run).
import { beforeAll, describe, expect, it } from 'vitest';
import { leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { connect, httpGet, metric, startTestRelay, token } from './support/relay-harness.js';

const db = useTestDatabase();
const ROWS = 60;
let first = 0;

beforeAll(async () => {
  await db.query(`
    create table blobs (id int primary key, tenant_id text not null, blob text);
    select relay.watch('blobs', 'tenant_id');
  `);
  // 60 transactions of one 100 kB row each: about 12 MB in the ring's own accounting
  await db.query(`do $$ begin for i in 1..${ROWS} loop insert into blobs values (i, 'a', repeat(md5(i::text), 3125)); commit; end loop; end $$`);
  await db.tick();
  first = Number((await db.query(`select relay.position()::int as p`)).rows[0]!.p) - ROWS + 1;
});
leakGuard(() => db.name);

describe('the ring at start', () => {
  it('reads back only what RELAY_HISTORY_BYTES holds, and a cursor older than that resumes from the log, complete', async () => {
    const relay = await startTestRelay(db, { RELAY_HISTORY_BYTES: '1mb' });
    try {
      const text = (await httpGet(`${relay.http}/metrics`)).body;
      // 100 kB rows count about 200 kB each: five fit in 1 MiB, and the read stops at the first one over
      expect(metric(text, 'pgrelay_transactions_received_total')).toBeLessThanOrEqual(6);
      expect(metric(text, 'pgrelay_ring_transactions')).toBeLessThanOrEqual(5);
      expect(metric(text, 'pgrelay_ring_transactions')).toBeGreaterThanOrEqual(4);
      expect(metric(text, 'pgrelay_ring_bytes')).toBeLessThanOrEqual(1024 * 1024);
      expect(relay.position).toBe(first + ROWS - 1);

      // from the first of the 60 (the log) and from the last three (the ring): every transaction once, in order
      const c = await connect(relay.url, await token({ tenant_id: 'a' }));
      c.send({ type: 'subscribe', id: 'all', table: 'blobs', since: first - 1 });
      c.send({ type: 'subscribe', id: 'recent', table: 'blobs', since: first + ROWS - 4 });
      await c.until(() => c.txs('all').length >= ROWS && c.txs('recent').length >= 3, 20_000, 'the resumed transactions');
      expect(c.txs('all').map((f) => f.seq)).toEqual(Array.from({ length: ROWS }, (_, i) => first + i));
      expect(c.txs('recent').map((f) => f.seq)).toEqual([first + ROWS - 3, first + ROWS - 2, first + ROWS - 1]);
      await c.close();
    } finally {
      await relay.close();
    }
  }, 60_000);

  it('reads back RELAY_HISTORY_TX transactions when they fit in the bytes', async () => {
    const relay = await startTestRelay(db, { RELAY_HISTORY_TX: '7', RELAY_HISTORY_BYTES: '64mb' });
    try {
      const text = (await httpGet(`${relay.http}/metrics`)).body;
      expect(metric(text, 'pgrelay_transactions_received_total')).toBe(7);
      expect(metric(text, 'pgrelay_ring_transactions')).toBe(7);
    } finally {
      await relay.close();
    }
  }, 60_000);
});
