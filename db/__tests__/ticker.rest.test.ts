// The ticker at rest (issue 22): asleep on LISTEN it sends about one statement a second; a writer that finds it asleep
// wakes it, a writer that looked while it was awake is watched until it commits, and a leader that dies asleep with a
// wake-up in flight is replaced by one that numbers what it missed. The safety look is set to a minute here, so that
// only the mechanism under test can number a transaction within the seconds each test allows.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { leakGuard, sleep, until, useTestDatabase } from '../testing/index.js';
import { TICKER_LOCK } from '../../client/shared/lock-keys.js';
import { Ticker } from '../ticker/ticker.js';
import type { TickerPacing, TickerState } from '../ticker/ticker-options.js';

const db = useTestDatabase();
leakGuard(() => db.name);

const quiet = { info: () => undefined, warn: () => undefined };
const NO_SAFETY_LOOK: Partial<TickerPacing> = { restLookMs: 60_000, candidateIntervalMs: 100 };
const started: Ticker[] = [];

function startTicker(pacing: Partial<TickerPacing> = NO_SAFETY_LOOK): Ticker & { states: TickerState[] } {
  const states: TickerState[] = [];
  const t = Object.assign(new Ticker({ databaseUrl: db.url, log: quiet, pacing, onState: (s) => states.push(s) }), { states });
  started.push(t);
  t.start();
  return t;
}

/** The seq given to the transaction that wrote `note`, if any yet. */
async function seqOf(note: string): Promise<number | undefined> {
  const { rows } = await db.query<{ seq: string }>(
    `select t.seq from relay.changes c join relay.transactions t using (txid) where c.row->>'note' = $1`, [note]);
  return rows[0] ? Number(rows[0].seq) : undefined;
}

beforeAll(async () => {
  await db.query(`create table jobs (id serial primary key, tenant text not null, note text);
                  select relay.watch('jobs', 'tenant')`);
});
afterEach(async () => {
  for (const t of started.splice(0)) await t.close();
});

describe('the ticker at rest', () => {
  it('sleeps when nothing happens, and then sends about one statement a second', async () => {
    const t = startTicker({ restLookMs: 1000 });
    await until(() => t.state === 'asleep', 'asleep');
    // just after it fell asleep it looks again a few times, 1, 2, 4 … ms apart, while a transaction older than its
    // sleep is running anywhere on the server (other test files write meanwhile): count after that
    await sleep(2_000);
    const before = t.statements;
    await sleep(3_000);
    const sent = t.statements - before;
    console.log(`ticker at rest: ${sent} statements in 3 s`);
    expect(sent).toBeGreaterThanOrEqual(2);
    expect(sent).toBeLessThanOrEqual(5);
    expect(t.state).toBe('asleep');
    // writers see a lease that has not run out: the next one wakes the ticker
    const { rows } = await db.query(`select pg_sequence_last_value('relay.ticker_asleep') > extract(epoch from clock_timestamp()) * 1000 as asleep`);
    expect(rows[0]!.asleep).toBe(true);
  });

  it('is woken by the first writer that finds it asleep, long before its safety look', async () => {
    const t = startTicker();
    await until(() => t.state === 'asleep', 'asleep');
    await sleep(2_000); // past the looks for stragglers just after it fell asleep (see the first test)
    const before = t.statements;
    const at = Date.now();
    await db.query(`insert into jobs (tenant, note) values ('a', 'woken')`);
    await until(async () => (await seqOf('woken')) !== undefined, 'the write numbered');
    console.log(`ticker woken: numbered ${Date.now() - at} ms after the commit, ${t.statements - before} statements`);
    // one tick for the wake-up (and perhaps the safety look); still asleep: a lone transaction does not wake it for good
    expect(t.statements - before).toBeLessThanOrEqual(3);
    await sleep(100);
    expect(t.state).toBe('asleep');
  });

  it('a transaction of several statements wakes it once', async () => {
    const t = startTicker();
    await until(() => t.state === 'asleep', 'asleep');
    const listener = await db.connect();
    let wakeUps = 0;
    listener.on('notification', (m) => m.channel === 'relay_wake' && wakeUps++);
    await listener.query('listen relay_wake');
    const c = await db.connect();
    try {
      await c.query('begin');
      for (let i = 0; i < 5; i++) await c.query(`insert into jobs (tenant, note) values ('a', 'several-${i}')`);
      await c.query(`update jobs set note = note || '!' where note like 'several-%'`);
      await c.query('commit');
    } finally {
      await c.end();
    }
    await until(async () => (await seqOf('several-0!')) !== undefined, 'the write numbered');
    await listener.end();
    expect(wakeUps).toBe(1);
  });

  it('watches a writer that looked while it was awake and commits after it fell asleep', async () => {
    // The writer's first statement finds the ticker awake (flag 0), so it will send no wake-up; the ticker then
    // starts, finds nothing committed, and falls asleep with the writer in progress in its last snapshot.
    await db.query(`select relay.ticker_sleep(false)`);
    const w = await db.connect();
    try {
      await w.query('begin');
      await w.query(`insert into jobs (tenant, note) values ('a', 'straggler')`);
      const t = startTicker();
      await until(() => t.state === 'asleep', 'asleep');
      await sleep(300);
      const at = Date.now();
      await w.query('commit');
      await until(async () => (await seqOf('straggler')) !== undefined, { what: 'the straggler numbered', timeoutMs: 5_000 });
      console.log(`straggler numbered ${Date.now() - at} ms after its commit`);
    } finally {
      await w.query('rollback').catch(() => undefined);
      await w.end();
    }
  });

  it('a leader that dies asleep with a wake-up in flight is replaced by one that numbers the write', async () => {
    const a = startTicker();
    await until(() => a.leader && a.state === 'asleep', 'a leads, asleep');
    const b = startTicker();
    await sleep(300);
    expect(b.leader).toBe(false);
    const w = await db.connect();
    try {
      await w.query('begin');
      await w.query(`insert into jobs (tenant, note) values ('a', 'in-flight')`);
      // the writer found the leader asleep: its NOTIFY goes out at commit, to a session that is gone by then
      const { rows } = await db.query(`select pg_terminate_backend(pid) as killed from pg_stat_activity
        where application_name = 'pgrelay-ticker' and datname = current_database() and wait_event = 'ClientRead'
          and pid in (select pid from pg_locks where locktype = 'advisory' and classid = $1 and objid = $2 and objsubid = 2 and granted)`, [...TICKER_LOCK]);
      expect(rows).toEqual([{ killed: true }]);
      await w.query('commit');
    } finally {
      await w.end();
    }
    await until(async () => (await seqOf('in-flight')) !== undefined, 'the write numbered by the next leader');
    expect(a.leader || b.leader).toBe(true);
  });

  it('a ticker that dies asleep lets its lease run out: writers then send no wake-ups (no NOTIFY lock for nobody)', async () => {
    const t = startTicker({ restLookMs: 1000, candidateIntervalMs: 60_000 });
    await until(() => t.state === 'asleep', 'asleep');
    const listener = await db.connect();
    let wakeUps = 0;
    listener.on('notification', (m) => m.channel === 'relay_wake' && wakeUps++);
    await listener.query('listen relay_wake');
    try {
      await db.query(`insert into jobs (tenant, note) values ('a', 'before')`);
      await until(() => wakeUps === 1, 'a wake-up while the ticker lives');
      await t.close();
      await sleep(3_500); // the lease: 3 × the 1 s look, at least 3 s
      await db.query(`insert into jobs (tenant, note) values ('a', 'after')`);
      await sleep(300);
      expect(wakeUps).toBe(1);
    } finally {
      await listener.end();
    }
  });

  it('stays awake under load, where writers send no wake-ups, and rests again after it', async () => {
    const t = startTicker({ restLookMs: 1000 });
    await until(() => t.state === 'asleep', 'asleep');
    const mark = t.states.length; // what the ticker does from here on: it was awake once already, at its start
    const listener = await db.connect();
    let wakeUps = 0;
    listener.on('notification', (m) => m.channel === 'relay_wake' && wakeUps++);
    await listener.query('listen relay_wake');
    const writers = await Promise.all([1, 2, 3, 4].map(() => db.connect()));
    let commits = 0;
    const stop = Date.now() + 2_000;
    try {
      await Promise.all(writers.map(async (c, k) => {
        while (Date.now() < stop) {
          await c.query(`insert into jobs (tenant, note) values ('load', $1)`, [`load-${k}-${commits++}`]);
        }
      }));
    } finally {
      for (const c of writers) await c.end();
    }
    await until(() => t.states.slice(mark).includes('awake') && t.state === 'asleep', 'awake under load, then asleep again');
    await listener.end();
    console.log(`under load: ${commits} commits, ${wakeUps} wake-ups, states ${t.states.join(' → ').slice(0, 200)}`);
    expect(t.states.slice(mark)).toContain('awake');
    // a few at the start and at the end of the burst; most writers found the ticker awake
    expect(wakeUps).toBeLessThan(commits / 4);
    const { rows } = await db.query(`select count(*)::int as n from relay.log l where not exists (select 1 from relay.transactions t where t.txid = l.txid)`);
    expect(rows[0]!.n).toBe(0);
  });
});
