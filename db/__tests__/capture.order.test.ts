// The core promise, against the ticker: seq order respects commit order and every dependency, one NOTIFY per numbered
// transaction, and the log replays to the tables. 16 writers; a ticker ticks throughout, and is killed and restarted.
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { leakGuard, sleep, until, useTestDatabase } from '../testing/index.js';
import { parseTickPayload } from '../tick-payload.js';
import { Ticker } from '../ticker/ticker.js';
import { TICKER_APPLICATION_NAME } from '../ticker/ticker-options.js';
import { replayLog, currentRows, sorted } from './support/replay.js';

const db = useTestDatabase();
leakGuard(() => db.name);

const WRITERS = 16;
const DURATION_MS = Number(process.env.PGRELAY_ORDER_TEST_MS ?? 20_000);
const TENANTS = ['a', 'b', 'c', 'd'];
const quiet = { info: () => undefined, warn: () => undefined };

beforeAll(async () => {
  // uid: a row's identity for its whole life (its key changes); ver: +1 at every update, so a row's history in seq
  // order must read 0, 1, 2, ... with no step missing, repeated or reversed
  await db.query(`
    create table acct (id int primary key, tenant text not null, balance bigint not null, ver int not null default 0, tag text);
    create table item (id bigint primary key, uid bigint not null, tenant text not null, acct_id int, n int not null, ver int not null default 0, tag text,
                       constraint item_acct foreign key (acct_id) references acct(id) deferrable initially deferred);
    select relay.watch('acct', 'tenant');
    select relay.watch('item', 'tenant');
  `);
});

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

interface Tally { committed: number; rolledBack: number; serializationFailures: number; failedAtCommit: number; fkFailures: number; savepointsRolledBack: number; heldOpen: number }

async function writer(w: number, done: () => boolean, tally: Tally, rolledBackTags: Set<string>): Promise<void> {
  const c = await db.connect({ application_name: `writer-${w}` });
  let i = 0;
  try {
    while (!done()) {
      i++;
      const tag = `w${w}-${i}`;
      const kind = Math.random();
      const serializable = kind < 0.15;
      let inCommit = false;
      try {
        await c.query(serializable ? 'begin isolation level serializable' : 'begin');
        if (serializable) await c.query(`select sum(balance) from acct where tenant = $1`, [pick(TENANTS)]);
        const statements = 1 + Math.floor(Math.random() * 4);
        for (let s = 0; s < statements; s++) {
          const t = pick(TENANTS);
          const r = Math.random();
          if (r < 0.3) {
            const id = Math.floor(Math.random() * 5000);
            await c.query(`insert into acct (id, tenant, balance, tag) values ($1, $2, 0, $3)
                           on conflict (id) do update set balance = acct.balance + 1, ver = acct.ver + 1, tag = excluded.tag`, [id, t, tag]);
          } else if (r < 0.5) {
            // multi-row, several tenants; ids sorted so that concurrent writers lock in one order
            const ids = Array.from({ length: 5 }, () => Math.floor(Math.random() * 5000)).sort((a, b) => a - b);
            await c.query(`update acct set balance = balance + 1, ver = ver + 1, tag = $1 where id = any($2::int[])`, [tag, ids]);
          } else if (r < 0.7) {
            const id = w * 10_000_000 + i * 10 + s;
            await c.query(`insert into item (id, uid, tenant, acct_id, n, tag) values ($1, $1, $2, (select id from acct where id >= $4 order by id limit 1), 1, $3), ($1 + 5, $1 + 5, $2, null, 2, $3)`,
              [id, t, tag, Math.floor(Math.random() * 5000)]);
          } else if (r < 0.8) {
            await c.query(`update item set n = n + 1, ver = ver + 1, tag = $1 where id in (select id from item where tenant = $2 and id >= $3 order by id limit 3)`,
              [tag, t, Math.floor(Math.random() * WRITERS) * 10_000_000]);
          } else if (r < 0.85) {
            // a key change: old and new rows must pair up
            await c.query(`update item set id = id + 1, ver = ver + 1, tag = $1 where id = (select max(id) from item where id % 1000 = 7)`, [tag]);
          } else if (r < 0.92) {
            await c.query(`delete from item where id in (select id from item where id >= $1 order by id limit 2)`,
              [Math.floor(Math.random() * WRITERS) * 10_000_000 + Math.floor(Math.random() * 5000)]);
          } else {
            await c.query('savepoint sp');
            await c.query(`insert into acct (id, tenant, balance, tag) values ($1, $2, 0, $3) on conflict (id) do update set ver = acct.ver + 1, tag = excluded.tag`,
              [5000 + Math.floor(Math.random() * 1000), t, `${tag}-sp`]);
            await c.query('rollback to savepoint sp');
            rolledBackTags.add(`${tag}-sp`);
            tally.savepointsRolledBack++;
          }
        }
        if (kind > 0.97) {
          // a deferred foreign key that fails at COMMIT
          await c.query(`insert into item (id, uid, tenant, acct_id, n, tag) values ($1, $1, 'a', -1, 0, $2)`, [w * 10_000_000 + i * 10 + 9, tag]);
        }
        // now and then a transaction stays open across many ticks (its changes carry low ids, and it commits late)
        if (kind > 0.15 && kind < 0.16) {
          tally.heldOpen++;
          await sleep(500 + Math.random() * 1500);
        } else {
          await sleep(Math.random() * 5);
        }
        if (kind > 0.9 && kind <= 0.97) {
          await c.query('rollback');
          rolledBackTags.add(tag);
          tally.rolledBack++;
        } else {
          inCommit = true;
          await c.query('commit');
          tally.committed++;
        }
      } catch (err) {
        const code = (err as { code?: string }).code;
        rolledBackTags.add(tag);
        if (code === '40001') {
          tally.serializationFailures++;
          if (inCommit) tally.failedAtCommit++;
        } else if (code === '23503') tally.fkFailures++;
        else if (code !== '40P01' && code !== '23505') throw err;
        await c.query('rollback').catch(() => undefined);
      }
    }
  } finally {
    await c.end();
  }
}

/** Kills the ticker's Postgres session now and then (as a relay SIGKILL or a network cut would); the ticker reconnects. */
async function sessionKiller(done: () => boolean): Promise<number> {
  let kills = 0;
  for (;;) {
    await sleep(3_000 + Math.random() * 2_000);
    if (done()) break;
    const { rows } = await db.query(`select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = $1 and datname = current_database()`, [TICKER_APPLICATION_NAME]);
    kills += rows.filter((r) => r.ok).length;
  }
  return kills;
}

describe('commit order under 16 concurrent writers and a ticker', () => {
  it(`holds for ${DURATION_MS / 1000} s of mixed transactions`, async () => {
    const listener = await db.connect({ application_name: 'order-listener' });
    const received: Array<{ seq: number; n: number; inline: boolean; raw: string }> = [];
    const malformed: string[] = [];
    listener.on('notification', (m) => {
      try {
        const p = JSON.parse(m.payload!);
        received.push({ seq: p.seq, n: p.n, inline: Array.isArray(p.changes), raw: m.payload! });
      } catch {
        malformed.push(m.payload ?? '');
      }
    });
    await listener.query('listen relay');

    // two candidates, as two relays would run: when the leader's session dies the other takes over
    const tickers = [new Ticker({ databaseUrl: db.url, log: quiet }), new Ticker({ databaseUrl: db.url, log: quiet })];
    for (const t of tickers) t.start();
    const tally: Tally = { committed: 0, rolledBack: 0, serializationFailures: 0, failedAtCommit: 0, fkFailures: 0, savepointsRolledBack: 0, heldOpen: 0 };
    const rolledBackTags = new Set<string>();
    // at least DURATION_MS, and on a loaded machine longer (up to twice), until the history below has enough to check
    const started = Date.now();
    const done = () => Date.now() - started >= 2 * DURATION_MS || (Date.now() - started >= DURATION_MS && tally.committed >= 2_000);
    const [kills] = await Promise.all([sessionKiller(done), ...Array.from({ length: WRITERS }, (_, w) => writer(w, done, tally, rolledBackTags))]);
    await until(async () => (await db.query(`select count(*)::int as n from relay.log l where not exists (select 1 from relay.transactions t where t.txid = l.txid)`)).rows[0]!.n === 0,
      { what: 'every committed transaction numbered', timeoutMs: 10_000, intervalMs: 50 });
    for (const t of tickers) await t.close();

    const { rows: seqRows } = await db.query<{ seq: string }>('select seq from relay.transactions order by seq');
    const logged = seqRows.map((r) => Number(r.seq));
    // notifications arrive in seq order on one session: once the last seq's is here, every one is (some cover a batch)
    await until(() => (received.at(-1)?.seq ?? 0) >= (logged.at(-1) ?? 0), { what: `the notification of seq ${logged.at(-1)}`, timeoutMs: 5000, intervalMs: 50 });
    await listener.end();
    console.log(`commit-order: ${JSON.stringify(tally)}, ticker sessions killed: ${kills}, ${logged.length} transactions numbered, ${received.length} notifications`);

    expect(malformed).toEqual([]);
    expect(tally.committed).toBeGreaterThan(500);
    expect(tally.heldOpen).toBeGreaterThan(0);
    expect(kills).toBeGreaterThan(0);
    expect(tally.rolledBack + tally.serializationFailures + tally.fkFailures).toBeGreaterThan(10);
    // 1. dense seqs 1..n; notifications strictly increasing and ending at n. A seq is notified once, or covered by the
    // next notification when that one is a reference for a batch of more than 200 transactions (after a takeover)
    expect(logged).toEqual(Array.from({ length: logged.length }, (_, k) => k + 1));
    for (let k = 0; k < received.length; k++) {
      const gap = received[k]!.seq - (k === 0 ? 0 : received[k - 1]!.seq);
      expect(gap).toBeGreaterThan(0);
      if (gap > 1) expect(gap > 200 && !received[k]!.inline, `seqs before ${received[k]!.seq} not notified`).toBe(true);
    }
    expect(received.at(-1)?.seq).toBe(logged.at(-1));
    const c = await db.connect();
    try {
      // every committed change got a seq (no row of relay.log is left without its transaction)
      const { rows: orphans } = await c.query(`select count(*)::int as n from relay.log l where not exists (select 1 from relay.transactions t where t.txid = l.txid)`);
      expect(orphans[0]!.n).toBe(0);
      // inline payloads agree with the log (as the relay reads them: it derives pk and old from version 2's rows)
      for (const r of received.filter((x) => x.inline).slice(0, 300)) {
        const { rows } = await c.query(`select c.id::int as id, c.tenant, c.schema_name || '.' || c.table_name as "table", c.op, c.pk, c.row, c.old, c.old_tenant as "oldTenant"
          from relay.changes c join relay.transactions t using (txid) where t.seq = $1 order by c.id`, [r.seq]);
        expect(parseTickPayload(r.raw)!.changes).toEqual(rows);
        expect(r.n).toBe(rows.length);
      }
      // 2. nothing of a rolled-back transaction or savepoint
      const { rows: leaked } = await c.query(`select count(*)::int as n from relay.changes where row->>'tag' = any($1)`, [[...rolledBackTags]]);
      expect(leaked[0]!.n).toBe(0);
      // 3. the log replays to the tables
      expect(sorted(await replayLog(c, 'public.acct', ['id']))).toEqual(sorted(await currentRows(c, 'public.acct', ['id'])));
      expect(sorted(await replayLog(c, 'public.item', ['id']))).toEqual(sorted(await currentRows(c, 'public.item', ['id'])));
      // 4. every row's history in seq order is its real history: versions 0, 1, 2, ... without a gap or a reversal
      const { rows: history } = await c.query(`select c.table_name, coalesce(c.row->>'uid', c.row->>'id') as uid, c.op, (c.row->>'ver')::int as ver
        from relay.changes c join relay.transactions t using (txid) order by t.seq, c.id`);
      const last = new Map<string, number>();
      let steps = 0;
      for (const h of history) {
        const key = `${h.table_name}:${h.uid}`;
        const prev = last.get(key);
        if (h.op === 'insert') expect(prev, `${key} inserted twice`).toBeUndefined();
        else if (h.op === 'update') {
          expect(h.ver, `${key} after version ${prev}`).toBe(prev! + 1);
          steps++;
        } else expect(h.ver, `${key} deleted at version ${h.ver} after ${prev}`).toBe(prev);
        if (h.op === 'delete') last.delete(key);
        else last.set(key, h.ver);
      }
      expect(steps).toBeGreaterThan(1000);
      // change_count matches
      const { rows: counts } = await c.query(`select count(*)::int as n from relay.transactions t where change_count <> (select count(*) from relay.log l where l.txid = t.txid)`);
      expect(counts[0]!.n).toBe(0);
    } finally {
      await c.end();
    }
  }, 2 * DURATION_MS + 120_000);
});
