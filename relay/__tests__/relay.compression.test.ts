// Issue 14, compression: RELAY_COMPRESSION=on negotiates permessage-deflate with clients that offer it, and every frame arrives intact and smaller on the wire; off never negotiates it.
import { beforeAll, describe, expect, it } from 'vitest';
import { createOrders, EXAMPLE_COLUMNS, insertOrder, leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { connect, delivered, httpGet, metric, startTestRelay, subscribeAnswer, token, type TestClient, type TestRelay } from './support/relay-harness.js';

const db = useTestDatabase();
let on: TestRelay;
let off: TestRelay;
/** Compression on, and a small buffer per socket (as relay.backpressure.test.ts). */
let small: TestRelay;

beforeAll(async () => {
  // the example's orders with a note; watched after the bulk insert below
  const { created_at, ...columns } = EXAMPLE_COLUMNS;
  await createOrders(db, { id: 'bigserial primary key', columns: { ...columns, note: 'text', created_at }, watch: false });
  await db.query(`
    -- tenant big: 2,000 rows whose notes are hex, which deflates only to about half, so that a 256 KiB snapshot page
    -- stays over 64 KiB compressed (the longest frame header)
    insert into orders (tenant_id, customer, total, note)
      select 'big', 'customer-' || g, g, (select string_agg(md5(g::text || '/' || i::text), '') from generate_series(1, 4) i)
      from generate_series(1, 2000) g;
    select relay.watch('orders', 'tenant_id');
  `);
  on = await startTestRelay(db, { RELAY_COMPRESSION: 'on' });
  off = await startTestRelay(db);
  small = await startTestRelay(db, { RELAY_COMPRESSION: 'on', RELAY_MAX_BACKPRESSURE: '256kb' });
});
leakGuard(() => db.name);

const NEGOTIATED = /^permessage-deflate(;|$)/;

/** Bytes each client reads from its TCP socket while `fn` runs. */
async function wireBytes(clients: TestClient[], fn: () => Promise<void>): Promise<number[]> {
  const before = clients.map((c) => c.bytesRead());
  await fn();
  return clients.map((c, i) => c.bytesRead() - before[i]!);
}

describe('RELAY_COMPRESSION=on', () => {
  it('negotiates permessage-deflate with a client that offers it; tx frames arrive intact, and smaller than for a client that does not offer it', async () => {
    const t = await token({ tenant_id: 'acme' });
    const plain = await connect(on.url, t, { perMessageDeflate: false });
    const deflating = await connect(on.url, t);
    // this one compresses its own messages too (ws's threshold 0): the relay inflates them
    const compressing = await connect(on.url, t, { perMessageDeflate: { threshold: 0 } });
    expect(plain.extensions).toBe('');
    expect(deflating.extensions).toMatch(NEGOTIATED);
    expect(deflating.ws.extensions).toBe('permessage-deflate');
    expect(compressing.ws.extensions).toBe('permessage-deflate');
    const clients = [plain, deflating, compressing];
    for (const c of clients) expect(await subscribeAnswer(c, 'o', 'orders')).toMatchObject({ type: 'subscribed' });

    const [plainBytes, deflatingBytes, compressingBytes] = await wireBytes(clients, async () => {
      for (let i = 0; i < 40; i++) {
        await insertOrder(db, { tenant_id: 'acme', customer: `Customer ${i}`, total: (i * 13.7).toFixed(2), status: 'paid' });
      }
      // and two larger frames: 40 updates in one transaction, then 260 inserts (about 50 KiB of JSON)
      await db.query(`update orders set status = 'shipped', note = 'batch ' || id where tenant_id = 'acme'`);
      await db.query(`insert into orders (tenant_id, customer, total) select 'acme', 'bulk-' || g, g from generate_series(1, 260) g`);
      await delivered(db, on, clients);
    });

    const txs = plain.txs('o');
    expect(txs).toHaveLength(42);
    expect(txs.flatMap((f) => f.changes).map((c: { op: string }) => c.op)).toEqual([...Array(40).fill('insert'), ...Array(40).fill('update'), ...Array(260).fill('insert')]);
    expect(deflating.txs('o')).toEqual(txs);
    expect(compressing.txs('o')).toEqual(txs);
    // measured on the sockets, not computed: JSON rows deflate to well under 80 %
    expect(deflatingBytes).toBeLessThan(plainBytes! * 0.8);
    expect(compressingBytes).toBeLessThan(plainBytes! * 0.8);
    for (const c of clients) await c.close();
  });

  it('sends a large snapshot intact, page by page, compressed', async () => {
    const t = await token({ tenant_id: 'big' });
    const plain = await connect(on.url, t, { perMessageDeflate: false });
    const deflating = await connect(on.url, t);
    expect(deflating.extensions).toMatch(NEGOTIATED);
    const lastPage = (c: TestClient) => c.next((f) => f.type === 'snapshot' && f.more === false, 20_000);
    const [plainBytes, deflatingBytes] = await wireBytes([plain, deflating], async () => {
      for (const c of [plain, deflating]) c.send({ type: 'subscribe', id: 's', table: 'orders', snapshot: true });
      await Promise.all([lastPage(plain), lastPage(deflating)]);
    });
    const pages = (c: TestClient) => c.frames.filter((f) => f.type === 'snapshot');
    expect(pages(plain).length).toBeGreaterThan(1); // about 480 KiB of rows in 256 KiB frames
    expect(pages(plain).flatMap((p) => p.rows)).toHaveLength(2000);
    expect(pages(deflating)).toEqual(pages(plain));
    expect(deflatingBytes).toBeLessThan(plainBytes! * 0.8);
    for (const c of [plain, deflating]) await c.close();
  });

  it('closes a slow reader with 4008 as before (compressed bytes count), and what it got is a gap-free prefix', async () => {
    const t = await token({ tenant_id: 'slow' });
    const slow = await connect(small.url, t);
    const fast = await connect(small.url, t);
    for (const c of [slow, fast]) {
      expect(c.extensions).toMatch(NEGOTIATED);
      expect(await subscribeAnswer(c, 'b', 'orders')).toMatchObject({ type: 'subscribed' });
    }
    (slow.ws as any)._socket.pause(); // stop reading: the kernel buffers fill, then the relay's
    const c = await db.connect();
    let closedAt = 0;
    try {
      for (let i = 0; i < 1500 && (!closedAt || i < closedAt + 20); i++) {
        // 20,000 hex characters: they deflate only to about half, so the buffers do fill
        await c.query(`insert into orders (tenant_id, customer, total, note) values ('slow', 'c', 1, (select string_agg(md5(random()::text), '') from generate_series(1, 625)))`);
        if (!closedAt && i % 20 === 0 && metric((await httpGet(`${small.http}/metrics`)).body, 'pgrelay_backpressure_closes_total') === 1) {
          closedAt = i;
          (slow.ws as any)._socket.resume(); // read again: the close frame waits behind what was buffered
        }
      }
    } finally {
      await c.end();
    }
    expect(closedAt).toBeGreaterThan(0);
    expect(await slow.closed).toEqual({ code: 4008, reason: 'too slow: resume from your cursor' });
    await delivered(db, small, [fast]);
    const got = slow.txs('b').map((f) => f.seq);
    expect(got.length).toBeGreaterThan(0);
    expect(got).toEqual(fast.txs('b').slice(0, got.length).map((f) => f.seq));
    await fast.close();
  }, 60_000);
});

describe('RELAY_COMPRESSION=off (the default)', () => {
  it('does not negotiate permessage-deflate even when the client offers it', async () => {
    const c = await connect(off.url, await token({ tenant_id: 'acme' }));
    expect(c.extensions).toBe('');
    expect(c.ws.extensions).toBe('');
    expect(await subscribeAnswer(c, 'o', 'orders')).toMatchObject({ type: 'subscribed' });
    await db.query(`insert into orders (tenant_id, customer, total) values ('acme', 'after', 1)`);
    await delivered(db, off, [c]);
    expect(c.txs('o').flatMap((f) => f.changes).map((ch: { row: { customer: string } }) => ch.row.customer)).toEqual(['after']);
    await c.close();
  });
});
