// A resume from the log that loses its database connection half-way goes on by itself: every transaction arrives once, in order.
// (Found by the chaos run: such a subscription used to get an `internal` error and then nothing, on a socket that stayed open.)
import { beforeAll, describe, expect, it } from 'vitest';
import { createTenantTable, leakGuard, until, useTestDatabase } from '../../db/testing/index.js';
import { allNumbered, caughtUp, connect, httpGet, metric, startTestRelay, token, type TestRelay } from './support/relay-harness.js';

const db = useTestDatabase();

beforeAll(async () => {
  await createTenantTable(db, 'blobs', { columns: { body: 'text' } });
});
leakGuard(() => db.name);

describe('a resume from the log', () => {
  it('whose database connection is terminated half-way is tried again from the last transaction sent', async () => {
    // started (and closed) inside the test: the pool replaces the terminated connection, and the leak check counts sessions
    // a small ring: the resume below is served from the log, through a cursor held while the client does not read
    const relay: TestRelay = await startTestRelay(db, { RELAY_HISTORY_TX: '10', RELAY_MAX_BACKPRESSURE: '256kb' });
    const tok = await token({ tenant_id: 't' });
    const c = await db.connect();
    const body = 'x'.repeat(100_000);
    // 40 MB: more than loopback's kernel buffers absorb, so the relay's catch-up waits for the client with its cursor open
    for (let i = 0; i < 400; i++) await c.query(`insert into blobs (tenant_id, body) values ('t', $1)`, [body]);
    await c.end();
    const last = await allNumbered(db);
    await caughtUp(db, relay);
    const { rows } = await db.query<{ seq: number }>(`select seq::int as seq from relay.transactions order by seq`);
    const want = rows.map((r) => r.seq);
    expect(want.length).toBe(400);

    const client = await connect(relay.url, tok);
    (client.ws as any)._socket.pause(); // stop reading: the relay fills its buffer and waits, cursor open
    client.send({ type: 'subscribe', id: 'b', table: 'blobs', since: 0 });
    await until(async () => (await db.query(
      `select pg_terminate_backend(pid) from pg_stat_activity
       where datname = current_database() and application_name = 'pgrelay' and query like '%relay.tenant_seqs%' and pid <> pg_backend_pid()`)).rowCount,
    { what: "the catch-up's query, to terminate it", timeoutMs: 20_000, intervalMs: 100 });
    // reading again at once: the resume's frames (100 kB each) then meet a kernel buffer that fills and empties; on uWS
    // 20.30 one of them used to lose its payload (see server.large-frames.test.ts), and the resume stalled at seq ~344
    (client.ws as any)._socket.resume();

    const errors = () => client.frames.filter((f) => f.type === 'error');
    await client.until(() => client.txs('b').at(-1)?.seq === last || errors().length > 0, 30_000, `the resume to reach seq ${last}`);
    expect(errors()).toEqual([]);
    const seqs = client.txs('b').filter((f) => !f.more).map((f) => f.seq as number);
    expect(seqs).toEqual(want);
    expect(metric((await httpGet(`${relay.http}/metrics`)).body, 'pgrelay_subscription_retries_total')).toBeGreaterThanOrEqual(1);
    await client.close();
    await relay.close();
  }, 90_000);
});
