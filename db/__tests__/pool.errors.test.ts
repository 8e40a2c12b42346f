// Found by the long chaos run (issue 11): a relay died of an unhandled 'error' when Postgres went away under a pooled
// client that was checked out. A pooled client's errors reach its caller as failed queries; none may end the process.
import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createKysely, createPool } from '../kysely.js';
import { leakGuard, sleep, useTestDatabase } from '../testing/index.js';

const db = useTestDatabase();
leakGuard(() => db.name);

describe('the pool', () => {
  it('survives the server ending a checked-out client: the query fails, nothing is thrown at the process', async () => {
    const pool = createPool(db.url, { max: 2, applicationName: 'pool-errors-test' });
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => void unhandled.push(err);
    process.on('uncaughtException', onUnhandled);
    try {
      const client = await pool.connect();
      const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      // the outcome is taken at once, so that the rejection is handled however fast the termination comes
      const sleeping = client.query('select pg_sleep(30)').then(() => 'finished', (err: Error) => err.message);
      await db.query('select pg_terminate_backend($1)', [pid]);
      expect(await sleeping).toBe('terminating connection due to administrator command');
      // an idle checked-out client whose server goes away emits 'error' too
      const idle = await pool.connect();
      const idlePid = (await idle.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      await db.query('select pg_terminate_backend($1)', [idlePid]);
      await sleep(300);
      client.release(true);
      idle.release(true);
      expect(unhandled).toEqual([]);
      // and the pool still serves
      expect((await pool.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    } finally {
      process.off('uncaughtException', onUnhandled);
      await pool.end();
    }
  });

  it('ends a stream whose connection the server terminated between two reads, and gives the pool a working connection', async () => {
    // pg-cursor's close() after such a failure never settled, and Kysely's stream awaits it: a catch-up from the log
    // hung forever on an open socket (the short chaos run in CI lost 1,344 transactions that way)
    const pool = createPool(db.url, { max: 1, applicationName: 'pool-errors-stream' });
    const kdb = createKysely(pool);
    try {
      const query = sql<{ g: number }>`select g from generate_series(1, 100000) g`.compile(kdb);
      const outcome = (async () => {
        let rows = 0;
        let first = true;
        for await (const chunk of kdb.getExecutor().stream(query, 100)) {
          rows += chunk.rows.length;
          if (first) {
            first = false;
            await db.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'pool-errors-stream' and datname = current_database()`);
            await sleep(300);
          }
        }
        return `read all ${rows} rows`;
      })().then((x) => x, (err: Error) => `failed: ${err.message}`);
      const settled = await Promise.race([outcome, sleep(10_000).then(() => 'still pending after 10 s')]);
      expect(settled).toMatch(/^failed: (terminating connection|Connection terminated)/);
      // the dead connection went back to the pool as dead: the next query gets a new one
      expect((await pool.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await kdb.destroy();
    }
  });
});
