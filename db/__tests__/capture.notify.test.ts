// The ticker's NOTIFY relay, one per numbered transaction: changes inline while small (version 2: each change's rows as
// relay.changes renders them, with its key columns), a reference otherwise; big writes never fail.
import type pg from 'pg';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseTickPayload } from '../tick-payload.js';
import { leakGuard, sleep, until, useTestDatabase } from '../testing/index.js';

const db = useTestDatabase();
leakGuard(() => db.name);

beforeAll(async () => {
  await db.query(`
    create table notes (id bigserial primary key, tenant text not null, body text, n int default 0);
    select relay.watch('notes', 'tenant');
  `);
});

let listener: pg.Client;
let payloads: Array<{ raw: string; json: any }>;
beforeEach(async () => {
  payloads = [];
  listener = await db.connect({ application_name: 'notify-test' });
  listener.on('notification', (m) => payloads.push({ raw: m.payload!, json: JSON.parse(m.payload!) }));
  await listener.query('listen relay');
});
afterEach(async () => {
  await listener.end();
});

async function settle(count: number): Promise<void> {
  await db.tick();
  await until(() => payloads.length >= count, { what: `${count} NOTIFY payload(s)`, timeoutMs: 5000, intervalMs: 25 });
  await sleep(50); // a moment for any extra one
}

describe('NOTIFY relay', () => {
  it('carries a small transaction inline, once, with origin', async () => {
    const c = await db.connect();
    await c.query('begin');
    await c.query(`set local relay.origin = 'tab-42'; set local relay.actor = 'alice'`);
    await c.query(`insert into notes (tenant, body) values ('t1', 'a')`);
    await c.query(`insert into notes (tenant, body) values ('t2', 'b'), ('t1', 'c')`);
    await c.query(`update notes set n = 1 where body = 'a'`);
    await c.query('commit');
    await c.end();
    await settle(1);
    expect(payloads).toHaveLength(1);
    const p = payloads[0]!.json;
    expect(p).toMatchObject({ v: 2, n: 4, origin: 'tab-42' });
    expect(p.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00$/);
    expect(p.changes.map((ch: any) => [ch.tenant, ch.table, ch.op])).toEqual([
      ['t1', 'public.notes', 'insert'], ['t2', 'public.notes', 'insert'], ['t1', 'public.notes', 'insert'], ['t1', 'public.notes', 'update'],
    ]);
    const ids = p.changes.map((ch: any) => ch.id);
    expect(ids).toEqual([...ids].sort((a: number, b: number) => a - b));
    // each change: its rows as relay.changes renders them (int8 as a string) and its key; the update's old row whole
    expect(p.changes[3]).toMatchObject({ op: 'update', key: ['id'], row: { body: 'a', n: 1, tenant: 't1' }, old_row: { body: 'a', n: 0 }, old_tenant: null });
    expect(typeof p.changes[0].row.id).toBe('string');
    // what the relay makes of it is what relay.changes says
    const { rows: logged } = await db.query(`select c.id::int as id, c.tenant, c.schema_name || '.' || c.table_name as "table", c.op, c.pk, c.row, c.old, c.old_tenant as "oldTenant"
      from relay.changes c join relay.transactions t using (txid) where t.seq = $1 order by c.id`, [p.seq]);
    expect(parseTickPayload(payloads[0]!.raw)!.changes).toEqual(logged);
    const { rows } = await db.query(`select actor, origin, change_count, db_user from relay.transactions where seq = $1`, [p.seq]);
    expect(rows[0]).toMatchObject({ actor: 'alice', origin: 'tab-42', change_count: 4 });
  });

  it('sends a reference for a 1 MB row, and the log holds the whole row', async () => {
    const body = 'x'.repeat(1024 * 1024);
    await db.query(`insert into notes (tenant, body) values ('t1', $1)`, [body]);
    await settle(1);
    expect(payloads).toHaveLength(1);
    expect(payloads[0]!.json).toEqual({ v: 2, seq: expect.any(Number), at: expect.any(String), n: 1 });
    const { rows } = await db.query(`select length(c.row->>'body') as len from relay.changes c join relay.transactions t using (txid) where t.seq = $1`, [payloads[0]!.json.seq]);
    expect(rows[0]!.len).toBe(1024 * 1024);
  });

  it('sends a reference for a 10k-row UPDATE, and logs every row', async () => {
    await db.query(`insert into notes (tenant, body) select 't' || (g % 5), 'row ' || g from generate_series(1, 10000) g`);
    await db.query(`update notes set n = n + 1 where body like 'row %'`);
    await settle(2);
    expect(payloads).toHaveLength(2);
    for (const p of payloads) expect(Object.keys(p.json).sort()).toEqual(['at', 'n', 'seq', 'v']);
    expect(payloads[1]!.json.n).toBe(10000);
    const { rows } = await db.query(`select count(*)::int as n from relay.changes c join relay.transactions t using (txid) where t.seq = $1 and c.op = 'update'`, [payloads[1]!.json.seq]);
    expect(rows[0]!.n).toBe(10000);
  });

  it('commits a 100k-row statement', async () => {
    await db.query(`insert into notes (tenant, body) select 'big', 'b' from generate_series(1, 100000)`);
    await settle(1);
    expect(payloads[0]!.json.n).toBe(100000);
  }, 120_000);

  it('never exceeds the 8000-byte NOTIFY limit near the inline threshold, with multi-byte text', async () => {
    for (let len = 2000; len <= 4200; len += 100) {
      await db.query(`insert into notes (tenant, body) values ('t1', $1)`, ['é'.repeat(len)]);
    }
    await settle(23);
    expect(payloads).toHaveLength(23);
    const sizes = payloads.map((p) => Buffer.byteLength(p.raw));
    expect(Math.max(...sizes)).toBeLessThan(8000);
    expect(payloads.some((p) => p.json.changes)).toBe(true);
    expect(payloads.some((p) => !p.json.changes)).toBe(true);
  });

  it('sends one reference to the last seq for a batch of more than 200 transactions', async () => {
    const c = await db.connect();
    for (let i = 0; i < 250; i++) await c.query(`insert into notes (tenant, body) values ('t1', 'batch')`);
    await c.end();
    await settle(1);
    expect(payloads).toHaveLength(1);
    const { rows } = await db.query(`select max(seq)::int as last from relay.transactions`);
    expect(payloads[0]!.json).toEqual({ v: 2, seq: rows[0]!.last, at: expect.any(String), n: 1 });
  });
});
