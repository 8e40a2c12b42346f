// The statement-level capture we ship and the row-level alternative (bench/benchmarks/capture/row-level.sql) log identical changes.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { leakGuard, until, useTestDatabase } from '../testing/index.js';

const db = useTestDatabase();
leakGuard(() => db.name);

beforeAll(async () => {
  await db.query(readFileSync(new URL('../../bench/benchmarks/capture/row-level.sql', import.meta.url), 'utf8'));
  for (const t of ['t_stmt', 't_row']) {
    await db.query(`create table ${t} (id bigint primary key, tenant text, qty int, price numeric(6,2), tags text[], secret text, doc jsonb)`);
    await db.query(`select relay.watch('${t}', 'tenant', '{secret}')`);
  }
  await db.query(`select relay_bench.use_row_level('t_row')`);
  // the comparison means something only if each table runs its own kind of capture
  const { rows } = await db.query(`select tgrelid::regclass::text as t, tgname, p.proname from pg_trigger g join pg_proc p on p.oid = g.tgfoid
    where tgname like 'relay\\_capture\\_%' order by 1, 2`);
  expect(rows.filter((r) => r.t === 't_row').map((r) => `${r.tgname}:${r.proname}`)).toEqual(['relay_capture_row:capture_row', 'relay_capture_truncate:capture']);
  expect(rows.filter((r) => r.t === 't_stmt').map((r) => r.proname)).toEqual(['capture', 'capture', 'capture', 'capture']);
});

const workload = [
  `insert into T select g, 't' || (g % 3), g, g / 4.0, array['a', g::text], 's', jsonb_build_object('g', g) from generate_series(1, 40) g`,
  `update T set qty = qty + 1, price = price * 2 where id % 2 = 0`,
  `update T set id = id + 100 where id between 10 and 20`,
  `update T set tenant = 't9' where id = 1`,
  `update T set qty = qty where id = 2`,
  `delete from T where id % 5 = 0`,
  `insert into T values (500, null, null, null, null, null, null)`,
  `truncate T`,
];

describe('row-level and statement-level capture', () => {
  it('write the same relay.log content and the same NOTIFY payloads', async () => {
    const listener = await db.connect();
    const payloads: any[] = [];
    listener.on('notification', (m) => payloads.push(JSON.parse(m.payload!)));
    await listener.query('listen relay');
    for (const stmt of workload) {
      await db.query(stmt.replace('T', 't_stmt'));
      await db.query(stmt.replace('T', 't_row'));
    }
    await db.tick();
    await until(() => payloads.length >= workload.length * 2, { what: 'a NOTIFY payload for each transaction', timeoutMs: 2000 });
    await listener.end();
    const { rows } = await db.query(`select t.seq, c.table_name, c.id, c.tenant, c.op, c.pk, c.row, c.old
      from relay.changes c join relay.transactions t using (txid) order by t.seq, c.id`);
    const bySeq = new Map<number, any[]>();
    for (const r of rows) bySeq.set(Number(r.seq), [...(bySeq.get(Number(r.seq)) ?? []), r]);
    const seqs = [...bySeq.keys()];
    expect(seqs).toHaveLength(workload.length * 2);
    for (let k = 0; k < seqs.length; k += 2) {
      // ids are the log's global order: compare the order inside each transaction, not the numbers
      const strip = (list: any[]) => list.map(({ seq: _s, table_name: _t, id: _i, ...rest }) => rest);
      expect(bySeq.get(seqs[k]!)![0].table_name).toBe('t_stmt');
      expect(strip(bySeq.get(seqs[k + 1]!)!)).toEqual(strip(bySeq.get(seqs[k]!)!));
      const norm = (p: any) => p.changes?.map((ch: any) => ({ ...ch, table: 'X', id: 0 })) ?? null;
      expect(norm(payloads[k + 1])).toEqual(norm(payloads[k]));
    }
  });
});
