// Deletes history older than RELAY_RETENTION on a schedule; an advisory lock makes one relay at a time do it.
import type pg from 'pg';
import type { Logger } from './log.js';
import { PRUNE_LOCK } from '../../client/shared/lock-keys.js';


export class Pruner {
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly retention: string,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.#timer = setInterval(() => void this.runOnce(), this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Prunes once if no other relay is pruning; returns the number of changes removed (0 when skipped). */
  async runOnce(): Promise<number> {
    if (this.#running) return 0;
    this.#running = true;
    let client: pg.PoolClient | undefined;
    try {
      client = await this.pool.connect();
      const { rows } = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, $2) as ok', [...PRUNE_LOCK]);
      if (!rows[0]?.ok) return 0;
      try {
        const res = await client.query<{ removed: string }>('select relay.prune($1::interval)::text as removed', [this.retention]);
        const removed = Number(res.rows[0]?.removed ?? 0);
        if (removed > 0) this.log.info({ removed, retention: this.retention }, 'pruned change history');
        return removed;
      } finally {
        await client.query('select pg_advisory_unlock($1, $2)', [...PRUNE_LOCK]);
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'pruning failed; will try again');
      return 0;
    } finally {
      client?.release();
      this.#running = false;
    }
  }
}
