// A transaction open across thousands of ticks: committed late, it is numbered once, in a later batch, and the ticker's
// reads meanwhile never look at its rows (the plan reads only what finished since the last tick).
import { describe, expect, it } from 'vitest';
import { leakGuard, sleep, until, useTestDatabase } from '../testing/index.js';
import { Ticker } from '../ticker/ticker.js';

const db = useTestDatabase();
leakGuard(() => db.name);

const OPEN_MS = Number(process.env.PGRELAY_LONG_TX_MS ?? 60_000);
const LONG_ROWS = 20_000;

describe('a long transaction', () => {
  it(`open for ${OPEN_MS / 1000} s while others commit is numbered once, after them, and costs the ticks nothing`, async () => {
    await db.query(`create table acc (id int primary key, tenant text not null, v int not null);
                    insert into acc select g, 't', 0 from generate_series(1, 100) g;
                    select relay.watch('acc', 'tenant')`);
    const listener = await db.connect();
    const notified: number[] = [];
    listener.on('notification', (m) => notified.push(JSON.parse(m.payload!).seq));
    await listener.query('listen relay');
    const tickMs: number[] = [];
    const ticker = new Ticker({ databaseUrl: db.url, log: { info: () => undefined, warn: () => undefined }, onTick: (_n, _s, ms) => void tickMs.push(ms) });
    ticker.start();

    const long = await db.connect({ application_name: 'long' });
    const other = await db.connect({ application_name: 'other' });
    let plan = '';
    try {
      await long.query('begin');
      await long.query(`insert into acc select g, 'long', 0 from generate_series(1000, ${999 + LONG_ROWS}) g`);
      const longTxid = (await long.query<{ x: string }>('select pg_current_xact_id()::text as x')).rows[0]!.x;
      const t0 = Date.now();
      let commits = 0;
      while (Date.now() - t0 < OPEN_MS) {
        await other.query(`update acc set v = v + 1 where id = $1`, [1 + (commits % 100)]);
        commits++;
        await sleep(2);
      }
      const before = Number((await db.query(`select max(seq) as s from relay.transactions`)).rows[0]!.s);
      // The batch read as relay.tick runs it, from the ticker's last snapshot, while the long transaction is open.
      // Its 20,000 rows sit in log_txid, but it is still running: it is neither above the last tick's xmax nor among
      // the transactions that finished since, so the read never reaches them.
      const results = await db.query(`
        set enable_seqscan = off;
        explain (analyze, buffers, costs off, timing off, summary off)
        with s as (select snap from relay.ticker),
             done as (select array(select x from s, pg_snapshot_xip(s.snap) x where pg_visible_in_snapshot(x, pg_current_snapshot())) as xs)
        select l.id from relay.log l, s where l.txid >= pg_snapshot_xmax(s.snap) and l.txid < pg_snapshot_xmax(pg_current_snapshot())
        union all
        select l.id from relay.log l, done where l.txid = any (done.xs)`);
      plan = (results as unknown as Array<{ rows: Array<{ 'QUERY PLAN': string }> }>)[1]!.rows.map((r) => r['QUERY PLAN']).join('\n');
      // why the read never reaches the long transaction's rows: it started before the last tick (so it is below the
      // range the read scans) and is still running (so it is not among the finished ones it looks up)
      const { rows: [why] } = await db.query(`select $1::xid8 < pg_snapshot_xmax(snap) as below, $1::xid8 in (select pg_snapshot_xip(snap)) as in_progress_at_tick,
        not pg_visible_in_snapshot($1::xid8, pg_current_snapshot()) as still_running from relay.ticker`, [longTxid]);
      expect(why).toEqual({ below: true, in_progress_at_tick: true, still_running: true });
      await long.query('commit');
      await until(async () => (await db.query(`select seq from relay.transactions where txid = $1`, [longTxid])).rows.length > 0,
        { what: 'the long transaction numbered', timeoutMs: 10_000, intervalMs: 50 });
      const { rows: seqRows } = await db.query<{ seq: string; n: number }>(`select seq, change_count as n from relay.transactions where txid = $1`, [longTxid]);
      expect(seqRows).toHaveLength(1);
      const longSeq = Number(seqRows[0]!.seq);
      await sleep(200);
      const sorted = [...tickMs].sort((a, b) => a - b);
      const p = (q: number) => sorted[Math.floor(q * (sorted.length - 1))]!.toFixed(1);
      console.log(`long transaction: ${commits} commits and ${tickMs.length} ticks while it was open; tick ms p50 ${p(0.5)}, p99 ${p(0.99)}, max ${p(1)}\n${plan}`);

      expect(commits).toBeGreaterThan(1000);
      expect(tickMs.length).toBeGreaterThan(500);
      // numbered after everything that committed while it was open, once, with all its rows
      expect(longSeq).toBeGreaterThan(before);
      expect(seqRows[0]!.n).toBe(LONG_ROWS);
      expect(notified.filter((s) => s === longSeq)).toHaveLength(1);
      // the plan: index scans on log_txid, and no more rows than the few changes of the last moments
      expect(plan).toMatch(/Index Scan using log_txid on log l/);
      expect(plan).not.toMatch(/Seq Scan on log/);
      // what the read cost: the whole read's buffers (the first node's) are the changes committed since the last tick,
      // the ticker's one-row state, and the index pages leading to them; the long transaction fills some 400 pages
      const pages = plan.match(/^Append.*\n\s+Buffers: shared hit=(\d+)(?: read=(\d+))?/);
      expect(pages, plan).not.toBeNull();
      console.log(`the batch read touched ${Number(pages![1]) + Number(pages![2] ?? 0)} buffers`);
    } finally {
      await long.query('rollback').catch(() => undefined);
      await long.end();
      await other.end();
      await ticker.close();
      await listener.end();
    }
  }, OPEN_MS + 90_000);
});
