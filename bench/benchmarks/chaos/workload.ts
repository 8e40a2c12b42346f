// The chaos workload: writers committing mixed transactions through plain SQL, as legacy applications do.
import pg from 'pg';
import { sleep } from '../../../db/testing/wait.js';

export const TENANTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark'];

export const SCHEMA = `
  create table orders (id bigserial primary key, tenant_id text not null, status text not null, total numeric(12,2) not null, note text);
  create table items (id bigserial primary key, tenant_id text not null, order_id bigint, qty int not null);
  create table events (id bigserial primary key, tenant_id text not null, kind text not null, payload jsonb);
  create table plans (id serial primary key, name text not null, price int not null);
  select relay.watch('orders', 'tenant_id');
  select relay.watch('items', 'tenant_id');
  select relay.watch('events', 'tenant_id');
  select relay.watch('plans', null);
`;

export interface WriterStats {
  committed: number;
  rolledBack: number;
  failed: number;
  truncates: number;
  oversize: number;
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

/** One writer: reconnects after any failure (a Postgres restart included) and keeps committing until stopped. */
export async function runWriter(url: string, isStopped: () => boolean, stats: WriterStats, options: { oversize: boolean; truncateEvery: number }): Promise<void> {
  let client: pg.Client | undefined;
  while (!isStopped()) {
    try {
      if (!client) {
        client = new pg.Client({ connectionString: url, application_name: 'chaos-writer' });
        client.on('error', () => undefined);
        await client.connect();
      }
      await oneTransaction(client, stats, options);
      if (Math.random() < 0.3) await sleep(Math.random() * 3);
    } catch {
      stats.failed++;
      await client?.end().catch(() => undefined);
      client = undefined;
      await sleep(100 + Math.random() * 200);
    }
  }
  await client?.end().catch(() => undefined);
}

async function oneTransaction(c: pg.Client, stats: WriterStats, options: { oversize: boolean; truncateEvery: number }): Promise<void> {
  const r = Math.random();
  const t = pick(TENANTS);
  await c.query('begin');
  try {
    if (r < 0.35) {
      const n = 1 + Math.floor(Math.random() * 3);
      await c.query(`insert into orders (tenant_id, status, total) select $1, (array['open','paid'])[1 + (random() * 1)::int], round((random() * 500)::numeric, 2) from generate_series(1, $2)`, [t, n]);
    } else if (r < 0.55) {
      // status flips move rows in and out of filtered subscriptions
      await c.query(`update orders set status = case when status = 'open' then 'paid' else 'open' end, total = total + 1
                     where id in (select id from orders where tenant_id = $1 order by id desc limit 3)`, [t]);
    } else if (r < 0.62) {
      // the oldest order goes; while the tenant still has orders older than the newest 9,000 ids, a purge takes a dozen,
      // as a retention job would: the table (and every list a dashboard refetches) stays bounded in a long run
      await c.query(`delete from orders where id in (select id from orders where tenant_id = $1 order by id
                       limit case when (select min(id) from orders where tenant_id = $1) < (select max(id) - 9000 from orders) then 12 else 1 end)`, [t]);
    } else if (r < 0.72) {
      const { rows } = await c.query<{ id: string }>(`insert into orders (tenant_id, status, total) values ($1, 'open', 10) returning id`, [t]);
      await c.query(`insert into items (tenant_id, order_id, qty) select $1, $2, g from generate_series(1, 4) g`, [t, rows[0]!.id]);
    } else if (r < 0.77) {
      // one transaction, several tenants
      await c.query(`update orders set total = total + 1 where id in (select id from orders order by random() limit 4)`);
    } else if (r < 0.82) {
      await c.query(`insert into orders (tenant_id, status, total) values ($1, 'open', 1)`, [t]);
      await c.query('rollback');
      stats.rolledBack++;
      return;
    } else if (r < 0.84 && options.oversize) {
      const size = 100_000 + Math.floor(Math.random() * 400_000);
      await c.query(`insert into events (tenant_id, kind, payload) values ($1, 'big', jsonb_build_object('blob', repeat('z', $2)))`, [t, size]);
      stats.oversize++;
    } else if (r < 0.85) {
      // a row moving to another tenant: the old tenant sees a delete, the new one an insert
      await c.query(`update orders set tenant_id = $2 where id = (select max(id) from orders where tenant_id = $1)`, [t, pick(TENANTS)]);
    } else if (r < 0.87) {
      await c.query(`insert into plans (name, price) values ($1, $2)`, [`plan-${Math.floor(Math.random() * 1000)}`, Math.floor(Math.random() * 100)]);
    } else {
      await c.query(`insert into events (tenant_id, kind, payload) values ($1, 'click', jsonb_build_object('x', (random() * 100)::int))`, [t]);
    }
    if (options.truncateEvery > 0 && Math.random() < 1 / options.truncateEvery) {
      await c.query('truncate events');
      stats.truncates++;
    }
    await c.query('commit');
    stats.committed++;
  } catch (err) {
    await c.query('rollback').catch(() => undefined);
    throw err;
  }
}
