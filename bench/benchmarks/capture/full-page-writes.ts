// full_page_writes of the capture benchmark's server, changed with a reload so that it follows --fsync.
import type pg from 'pg';
import { until } from '../../../db/testing/wait.js';

/**
 * full_page_writes is set with ALTER SYSTEM rather than on the command line (which would pin it), so that a
 * benchmark can turn it off for a measurement and back on (it only needs a reload).
 */
export async function fullPageWrites(c: pg.Client, on: boolean): Promise<void> {
  await c.query(`alter system set full_page_writes = ${on ? 'on' : 'off'}`);
  await c.query('select pg_reload_conf()');
  // the reload is asynchronous: wait until this session sees it
  const want = on ? 'on' : 'off';
  await until(async () => (await c.query<{ v: string }>("select current_setting('full_page_writes') as v")).rows[0]!.v === want, {
    what: `full_page_writes = ${want} after pg_reload_conf()`, timeoutMs: 5000, intervalMs: 50,
  });
}
