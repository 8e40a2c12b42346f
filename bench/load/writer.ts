// The writer process: commits single-statement transactions through plain SQL (inserts, updates, deletes of `orders`), paced open-loop at a fixed rate or as a burst.
import pg from 'pg';
import type { WriterCommand, WriterReply, WriterResult } from './messages.js';

/** A small seeded PRNG (mulberry32), so that every target gets the same sequence of operations. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const statuses = ['paid', 'shipped', 'delivered', 'cancelled'];

async function run(o: WriterCommand): Promise<WriterResult> {
  const rand = random(o.seed);
  const clients = await Promise.all(
    Array.from({ length: o.connections }, async () => {
      const c = new pg.Client({ connectionString: o.databaseUrl, application_name: 'pgrelay-bench-writer' });
      await c.connect();
      return c;
    }),
  );
  const result: WriterResult = { committed: {}, transactions: 0, inserts: 0, updates: 0, deletes: 0, elapsed: 0, lastCommitAt: 0, maxBacklog: 0, errors: [] };
  const live = new Map<string, string[]>(o.tenants.map((t) => [t, []]));
  for (const t of o.tenants) result.committed[t] = [];
  const burst = o.rate === 0;
  const warmupCount = burst ? 0 : Math.round(o.warmup * o.rate);
  const noise = burst ? (o.noise ?? 0) : 0;
  const counted = burst ? (o.count ?? 0) + noise : Math.round(o.duration * o.rate);
  const total = warmupCount + counted;
  let mid = o.midBase;
  let countedStart = 0;
  let lastCommit = 0;

  const pick = (from: number) => o.tenants[from + Math.floor(rand() * (o.tenants.length - from))]!;
  // A burst with noise: exactly `count` transactions of the first tenant, the noise of the others spread evenly among them.
  const tenantFor = (i: number): string =>
    noise > 0 ? (Math.floor(((i + 1) * noise) / total) > Math.floor((i * noise) / total) ? pick(1) : o.tenants[0]!) : pick(0);

  async function exec(c: pg.Client, i: number): Promise<void> {
    const warm = i < warmupCount;
    if (!warm && countedStart === 0) countedStart = performance.now();
    const tenant = tenantFor(i);
    const rows = live.get(tenant)!;
    const r = rand() * 100;
    const op = warm || rows.length === 0 || r < o.mix[0] ? 'insert' : r < o.mix[0] + o.mix[1] ? 'update' : 'delete';
    try {
      if (op === 'insert' && (o.batch ?? 1) > 1) {
        // one transaction, one statement, `batch` rows: the same values for every target (from the seeded generator)
        const n = o.batch!;
        const mids = Array.from({ length: n }, () => (warm ? 0 : ++mid));
        const res = await c.query<{ id: string }>({
          name: 'ins-batch',
          text: `insert into orders (tenant_id, customer, amount, status, mid)
                 select $1, u.customer, u.amount, 'new', u.mid from unnest($2::text[], $3::numeric[], $4::bigint[]) as u(customer, amount, mid) returning id`,
          values: [tenant, mids.map(() => `customer-${Math.floor(rand() * 1e6)}`), mids.map(() => (rand() * 1000).toFixed(2)), mids],
        });
        for (const r of res.rows) rows.push(r.id);
        if (!warm) (result.committed[tenant]!.push(...mids), (result.inserts += n));
      } else if (op === 'insert') {
        const m = warm ? 0 : ++mid;
        const res = await c.query<{ id: string }>({
          name: 'ins',
          text: 'insert into orders (tenant_id, customer, amount, status, mid) values ($1, $2, $3, $4, $5) returning id',
          values: [tenant, `customer-${Math.floor(rand() * 1e6)}`, (rand() * 1000).toFixed(2), 'new', m],
        });
        rows.push(res.rows[0]!.id);
        if (!warm) (result.committed[tenant]!.push(m), result.inserts++);
      } else if (op === 'update') {
        const id = rows[Math.floor(rand() * rows.length)]!;
        const m = ++mid;
        const res = await c.query({
          name: 'upd',
          text: 'update orders set status = $2, amount = $3, mid = $4, ts = clock_timestamp() where id = $1',
          values: [id, statuses[Math.floor(rand() * statuses.length)], (rand() * 1000).toFixed(2), m],
        });
        if (res.rowCount === 1) (result.committed[tenant]!.push(m), result.updates++);
      } else {
        const at = Math.floor(rand() * rows.length);
        const id = rows[at]!;
        rows[at] = rows[rows.length - 1]!;
        rows.pop();
        const res = await c.query({ name: 'del', text: 'delete from orders where id = $1', values: [id] });
        if (res.rowCount === 1) (result.committed[tenant]!.push(-Number(id)), result.deletes++);
      }
      if (!warm) {
        result.transactions++;
        lastCommit = performance.now();
      }
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (result.errors.length < 5 && !result.errors.includes(msg)) result.errors.push(msg);
    }
  }

  await new Promise<void>((resolve) => {
    const idle = [...clients];
    const start = performance.now();
    let issued = 0;
    let inflight = 0;
    const pump = () => {
      // Open loop: what is due by now is due whether or not earlier commits were slow.
      const due = burst ? total : Math.min(total, Math.floor(((performance.now() - start) / 1000) * o.rate) + 1);
      while (issued < due && idle.length) {
        const c = idle.pop()!;
        inflight++;
        void exec(c, issued++).finally(() => {
          inflight--;
          idle.push(c);
          pump();
        });
      }
      if (!burst) result.maxBacklog = Math.max(result.maxBacklog, due - issued);
      if (issued >= total && inflight === 0) {
        clearInterval(timer);
        resolve();
      }
    };
    const timer = setInterval(pump, 1);
    pump();
  });
  result.elapsed = countedStart ? (lastCommit - countedStart) / 1000 : 0;
  result.lastCommitAt = performance.timeOrigin + lastCommit;
  await Promise.all(clients.map((c) => c.end()));
  return result;
}

process.once('message', (raw) => {
  const reply = (m: WriterReply) => process.send!(m, () => process.exit(0));
  run(raw as WriterCommand).then(
    (result) => reply({ ev: 'done', result }),
    (err: unknown) => reply({ ev: 'error', message: err instanceof Error ? err.message : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
