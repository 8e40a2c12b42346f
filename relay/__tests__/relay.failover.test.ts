// Failures: the relay killed with SIGKILL and restarted, and its LISTEN backend terminated; clients of the real client library lose nothing.
import WebSocket from 'ws';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRelayClient, type RelayClient } from '../../client/index.js';
import { freePort } from '../../client/shared/free-port.js';
import { createOrders, leakGuard, sleep, until, useTestDatabase, writeOrders } from '../../db/testing/index.js';
import { TICKER_LOCK } from '../../client/shared/lock-keys.js';
import { useCliProcesses } from './support/cli-process.js';
import { pgListenSession, type ListenSession } from '../feed/listen-session.js';
import { allNumbered, httpGet, metric, startTestRelay, token } from './support/relay-harness.js';

const db = useTestDatabase();
const cli = useCliProcesses();

beforeAll(async () => {
  await createOrders(db, { columns: { n: 'int' } });
});
leakGuard(() => db.name);

/** Single-row transactions, two of three for tenant a, 2 ms apart, until stopped. */
const writer = () => writeOrders(db, (n) => (n % 3 ? 'a' : 'b'), { pauseMs: 2 });

async function expectedSeqs(after: number): Promise<number[]> {
  // what committed must be numbered first (the relay's ticker does it; a relay that was down has some catching up to do)
  await allNumbered(db);
  const { rows } = await db.query(`select distinct t.seq::int as seq from relay.transactions t join relay.changes c using (txid) where c.tenant = 'a' and t.seq > $1 order by 1`, [after]);
  return rows.map((r) => r.seq);
}

async function follow(url: string): Promise<{ client: RelayClient; seqs: number[]; start: number; reached: (seq: number) => Promise<void> }> {
  const client = createRelayClient({ url, token: () => token({ tenant_id: 'a' }), WebSocket: WebSocket as never, backoff: { minMs: 50, maxMs: 400 } });
  const seqs: number[] = [];
  const sub = client.subscribe('orders', {}, { onTransaction: (tx) => void seqs.push(tx.seq) });
  await until(() => sub.cursor !== undefined, { what: 'the subscription to start', timeoutMs: 10_000, intervalMs: 10 });
  const start = sub.cursor!;
  const reached = async (seq: number) => {
    await until(() => seqs.includes(seq), { what: () => `seq ${seq} at the client (last ${seqs.at(-1)})`, timeoutMs: 20_000 });
  };
  return { client, seqs, start, reached };
}

describe('failover', () => {
  it('a relay killed with SIGKILL and started again: the client resumes and misses nothing', async () => {
    const port = await freePort();
    const first = await cli.startRelay(db, port);
    const { client, seqs, start, reached } = await follow(`ws://127.0.0.1:${port}/ws`);
    const statuses: string[] = [];
    client.onStatus(({ to }) => statuses.push(to));
    const w = writer();
    await sleep(400);
    first.signal('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    await sleep(600); // writes go on while no relay runs
    const second = await cli.startRelay(db, port);
    await sleep(400);
    await w.stop();
    const expected = await expectedSeqs(start);
    await reached(expected.at(-1)!);
    expect(statuses).toContain('reconnecting');
    expect(seqs).toEqual(expected);
    client.close();
    second.signal('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 60_000);

  it('issue 22: the ticker moves between relays while clients of both follow: each gets every transaction once, in order', async () => {
    // The relay that ticks stops listening on relay and publishes its own ticks in-process; when its ticker session
    // ends it listens again and reads what it missed. Kill the leader's ticker session three times during writes.
    const a = await startTestRelay(db);
    const b = await startTestRelay(db);
    const ca = await follow(a.url);
    const cb = await follow(b.url);
    const w = writer();
    const leaders: boolean[][] = [];
    for (let k = 0; k < 3; k++) {
      await sleep(400);
      leaders.push([a.ticker, b.ticker]);
      const { rows } = await db.query(`select pg_terminate_backend(a.pid) as ok from pg_stat_activity a join pg_locks l on l.pid = a.pid
        where a.application_name = 'pgrelay-ticker' and a.datname = current_database() and l.locktype = 'advisory' and l.classid = $1 and l.objid = $2 and l.objsubid = 2 and l.granted`, [...TICKER_LOCK]);
      expect(rows).toEqual([{ ok: true }]);
    }
    await sleep(600);
    await w.stop();
    for (const c of [ca, cb]) {
      const expected = await expectedSeqs(c.start);
      await c.reached(expected.at(-1)!);
      expect(c.seqs).toEqual(expected);
      c.client.close();
    }
    // someone led each time (the relays take turns as their sessions end)
    expect(leaders.every(([x, y]) => x !== y)).toBe(true);
    await a.close();
    await b.close();
  }, 60_000);

  it("the LISTEN backend terminated: the relay reads the gap and clients see none", async () => {
    const relay = await startTestRelay(db);
    const { client, seqs, start, reached } = await follow(relay.url);
    const w = writer();
    await sleep(200);
    const { rows } = await db.query(`select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = 'pgrelay-listener' and datname = current_database()`);
    expect(rows.length).toBeGreaterThan(0);
    await sleep(800);
    await w.stop();
    const expected = await expectedSeqs(start);
    await reached(expected.at(-1)!);
    expect(seqs).toEqual(expected);
    const text = (await httpGet(`${relay.http}/metrics`)).body;
    expect(metric(text, 'pgrelay_listener_reconnects_total')).toBeGreaterThanOrEqual(1);
    expect((await httpGet(`${relay.http}/readyz`)).status).toBe(200);
    client.close();
    await relay.close();
  }, 60_000);
  it('a notification that arrives while the relay starts leaves no hole in its history', async () => {
    // 4,000 transactions in the log: the relay reads them back into its ring in batches of 500.
    await db.query(`do $$ begin for i in 1..4000 loop insert into orders (tenant_id, n) values ('a', -i); commit; end loop; end $$`);
    await db.tick();
    const base = Number((await db.query(`select relay.position()::int as p`)).rows[0]!.p) - 4000;
    // The real LISTEN session, with one commit made just after LISTEN runs: its notification reaches the relay before
    // the relay has read where the log stands, and the relay gets there a little later (several delays, so that one
    // of them falls between two batches of the read that notification started).
    for (const delayMs of [0, 5, 10, 20, 40, 80]) {
      const real = pgListenSession(db.relayUrl, ['relay', 'relay_config']);
      let seen: () => void = () => undefined;
      const session: ListenSession = {
        onNotification: (cb) => real.onNotification((channel, payload) => (cb(channel, payload), seen())),
        onState: (cb) => real.onState(cb),
        onError: (cb) => real.onError(cb),
        close: () => real.close(),
        connect: async () => {
          await real.connect();
          const notified = new Promise<void>((r) => (seen = r));
          await db.query(`insert into orders (tenant_id, n) values ('a', 0)`);
          await notified;
          await sleep(delayMs);
        },
      };
      const relay = await startTestRelay(db, {}, session);
      try {
        // resume from before the 4,000: everything comes from the ring, which must hold all of it
        const client = createRelayClient({ url: relay.url, token: () => token({ tenant_id: 'a' }), WebSocket: WebSocket as never });
        const seqs: number[] = [];
        client.subscribe('orders', { since: base }, { onTransaction: (tx) => void seqs.push(tx.seq) });
        const want = await expectedSeqs(base);
        await until(() => seqs.length >= want.length, {
          what: () => `${want.length} transactions replayed when the relay read its position ${delayMs} ms after the first notification (${seqs.length} so far)`,
          timeoutMs: 5_000,
        }).finally(() => client.close());
        expect(seqs.length, `transactions replayed when the relay read its position ${delayMs} ms after the first notification`).toBe(want.length);
        expect(seqs).toEqual(want);
      } finally {
        await relay.close();
      }
    }
  }, 90_000);
});
