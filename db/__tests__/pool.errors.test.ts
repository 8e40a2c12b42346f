// Found by the long chaos run (issue 11): a relay died of an unhandled 'error' when Postgres went away under a pooled
// client that was checked out. A pooled client's errors reach its caller as failed queries; none may end the process.
import { describe, expect, it } from 'vitest';
import { createPool } from '../kysely.js';
import { leakGuard, useTestDatabase } from '../testing/index.js';

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
      await new Promise((r) => setTimeout(r, 300));
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
});
