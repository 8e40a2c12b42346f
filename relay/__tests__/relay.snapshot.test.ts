// Snapshot then stream, under concurrent writes, equals the table at the end; paging and split transactions.
import { beforeAll, describe, expect, it } from 'vitest';
import { keepWriting, leakGuard, sleep, useTestDatabase } from '../../db/testing/index.js';
import { applyChange, sorted, type JsonRow } from '../../db/__tests__/support/replay.js';
import { allNumbered, connect, startTestRelay, token, type TestRelay } from './support/relay-harness.js';

const db = useTestDatabase();
let relay: TestRelay;

beforeAll(async () => {
  await db.query(`
    create table items (id int primary key, tenant_id text not null, qty int not null, label text);
    insert into items select g, 't' || (g % 2), g, repeat('x', 40) from generate_series(1, 3000) g;
    select relay.watch('items', 'tenant_id');
  `);
  relay = await startTestRelay(db, { RELAY_MAX_FRAME: '16kb' });
});
leakGuard(() => db.name);

describe('snapshot subscriptions', () => {
  it('snapshot plus the stream after it equals the table, while 4 writers commit', async () => {
    const writers = Array.from({ length: 4 }, (_, w) => keepWriting(db, async (c, i) => {
      const id = 1 + Math.floor(Math.random() * 3500);
      if (i % 5 === 4) await c.query(`delete from items where id = $1`, [id]);
      else await c.query(`insert into items (id, tenant_id, qty, label) values ($1, 't' || ($1 % 2), 1, 'w${w}') on conflict (id) do update set qty = items.qty + 1`, [id]);
    }));
    await sleep(200);
    const client = await connect(relay.url, await token({ tenant_id: 't1' }));
    client.send({ type: 'subscribe', id: 'items', table: 'items', snapshot: true });
    await client.until(() => client.frames.some((f) => f.type === 'snapshot' && f.more === false), 20_000, 'the last snapshot page');
    await sleep(300);
    await Promise.all(writers.map((w) => w.stop()));
    const last = await allNumbered(db);
    const { rows: lastT1 } = await db.query(`select max(t.seq)::int as seq from relay.transactions t join relay.changes c using (txid) where c.tenant = 't1' and t.seq <= $1`, [last]);
    await client.until(() => client.txs('items').some((f) => f.seq === lastT1[0]!.seq), 20_000, 'the last write');

    const subscribed = client.frames.find((f) => f.type === 'subscribed')!;
    const pages = client.frames.filter((f) => f.type === 'snapshot');
    expect(pages.length).toBeGreaterThan(1); // 1,500 rows do not fit one 16 KiB frame
    expect(pages.every((p) => p.seq === subscribed.seq)).toBe(true);
    expect(pages.slice(0, -1).every((p) => p.more === true)).toBe(true);
    const state = new Map<string, JsonRow>();
    for (const p of pages) for (const r of p.rows) state.set(JSON.stringify([r.id]), r);
    const txs = client.txs('items');
    expect(txs[0]!.seq).toBeGreaterThan(subscribed.seq);
    for (const f of txs) for (const ch of f.changes) applyChange(state, ch, ['id']);
    const { rows: table } = await db.query<{ row: JsonRow }>(`select row from relay.snapshot('items', 't1')`);
    expect(sorted(state)).toEqual(sorted(new Map(table.map((r) => [JSON.stringify([r.row.id]), r.row]))));
    await client.close();
  }, 60_000);

  it('an empty snapshot still names its position', async () => {
    const client = await connect(relay.url, await token({ tenant_id: 'nobody' }));
    client.send({ type: 'subscribe', id: 'e', table: 'items', snapshot: true });
    const sub = await client.next((f) => f.type === 'subscribed');
    expect(await client.next((f) => f.type === 'snapshot')).toEqual({ type: 'snapshot', sub: 'e', seq: sub.seq, rows: [], more: false });
    await client.close();
  });
});

describe('large transactions', () => {
  it('are split into frames under RELAY_MAX_FRAME with the same seq, more on all but the last', async () => {
    const client = await connect(relay.url, await token({ tenant_id: 't0' }));
    client.send({ type: 'subscribe', id: 'big', table: 'items' });
    await client.next((f) => f.type === 'subscribed');
    await db.query(`update items set qty = qty + 1000 where tenant_id = 't0'`);
    const { rows } = await db.query(`select count(*)::int as n from items where tenant_id = 't0'`);
    await client.until(() => client.txs('big').some((f) => !f.more), 20_000, 'the last frame');
    const frames = client.txs('big');
    expect(frames.length).toBeGreaterThan(2);
    expect(new Set(frames.map((f) => f.seq)).size).toBe(1);
    expect(frames.slice(0, -1).every((f) => f.more === true)).toBe(true);
    expect(frames.at(-1)!.more).toBeUndefined();
    expect(frames.reduce((n, f) => n + f.changes.length, 0)).toBe(rows[0]!.n);
    expect(Math.max(...frames.map((f) => JSON.stringify(f).length))).toBeLessThanOrEqual(16 * 1024);
    await client.close();
  });
});
