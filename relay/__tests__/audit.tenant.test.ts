// Issue 12, item 2: "what did tenant X receive?" is answerable from relay.audit alone, exactly as the relay routed it
// (rows moving between tenants, truncates, excluded columns), over a mixed workload.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { connect, delivered, startTestRelay, token, type TestClient, type TestRelay } from './support/relay-harness.js';

const db = useTestDatabase();
let relay: TestRelay;

beforeAll(async () => {
  await db.query(`create table ventas (id int primary key, idnegocio int not null, total numeric(10,2), tarjeta text);
                  select relay.watch('ventas', 'idnegocio', '{tarjeta}')`);
  relay = await startTestRelay(db);
});
afterAll(async () => {
  await relay?.close();
});
leakGuard(() => db.name);

/** What a tenant's subscriber must have received, read from relay.audit: a move away arrives as a delete, a move in as an insert. */
async function fromAudit(tenant: string, after: number): Promise<Array<[number, string, unknown]>> {
  const { rows } = await db.query(`select seq::int as seq, op, pk, tenant, old_tenant from relay.audit
    where "table" = 'public.ventas' and seq > $2 and (tenant = $1 or old_tenant = $1 or (tenant is null and op = 'truncate'))
    order by seq, change_id`, [tenant, after]);
  return rows.map((r) => [r.seq, r.op === 'update' && r.old_tenant === tenant ? 'delete' : r.op === 'update' && r.old_tenant !== null ? 'insert' : r.op, r.pk]);
}

function received(c: TestClient): Array<[number, string, unknown]> {
  return c.txs('v').flatMap((f) => (f.changes as Array<{ op: string; pk: unknown }>).map((ch) => [f.seq as number, ch.op, ch.pk] as [number, string, unknown]));
}

describe('relay.audit per tenant', () => {
  it("equals what that tenant's socket received, through moves between tenants, truncates and excluded columns", async () => {
    const sockets = new Map<string, TestClient>();
    let start = 0;
    for (const t of ['1', '2', '3']) {
      const c = await connect(relay.url, await token({ tenant_id: t }));
      c.send({ type: 'subscribe', id: 'v', table: 'ventas' });
      const ok = await c.next((f) => f.type === 'subscribed');
      start = ok.seq;
      sockets.set(t, c);
    }
    const w = await db.connect({ application_name: 'caja-1' });
    try {
      for (let round = 0; round < 3; round++) {
        const base = round * 100;
        await w.query(`insert into ventas select $1 + g, 1 + g % 3, g * 1.5, 'card-' || g from generate_series(1, 30) g`, [base]);
        await w.query(`update ventas set total = total + 1, tarjeta = 'x' where id % 4 = 0`);
        // moves: 1 → 2, 2 → 3, 3 → 1, in one statement and in their own transactions
        await w.query(`update ventas set idnegocio = case idnegocio when 1 then 2 when 2 then 3 else 1 end where id % 5 = 0`);
        await w.query('begin');
        await w.query(`update ventas set idnegocio = 2 where id = $1 + 1`, [base]);
        await w.query(`update ventas set total = 0 where id = $1 + 1`, [base]);
        await w.query('commit');
        await w.query(`delete from ventas where id % 7 = 0`);
        if (round === 1) await w.query(`truncate ventas`);
      }
    } finally {
      await w.end();
    }
    await delivered(db, relay, sockets.values());
    for (const [tenant, c] of sockets) {
      const got = received(c);
      expect(got.length, `tenant ${tenant} received something`).toBeGreaterThan(20);
      expect(got, `tenant ${tenant}: socket vs relay.audit`).toEqual(await fromAudit(tenant, start));
      expect(got.some(([, op]) => op === 'truncate')).toBe(true);
      expect(JSON.stringify(c.txs('v'))).not.toContain('tarjeta');
      await c.close();
    }
  });
});
