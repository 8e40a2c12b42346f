// Keeps the embedded cluster of `npm start` running: its owner restarts it when it dies, a bounded number of times.
import { backoff } from '../../client/shared/backoff.js';
import { PgRelayError } from '../../client/shared/errors.js';
import type { TickerLog } from '../ticker/ticker-options.js';
import type { DevDatabase } from './dev-database.js';

/** The little of a logger the supervisor uses (the relay passes its pino logger): a structured line at three levels. */
export interface SupervisorLog extends TickerLog {
  error(fields: object, message: string): void;
}

/** Options of {@link ClusterSupervisor}. */
export interface ClusterSupervisorOptions {
  dev: DevDatabase;
  log: SupervisorLog;
  /** Called once when the cluster could not be restarted: the process should stop and exit non-zero with its message. */
  onGiveUp: (err: PgRelayError) => void;
  /** Restarts tried in a row before giving up. Default 5. */
  maxAttempts?: number;
  /** How often the postmaster is checked. Default 1000 ms. */
  intervalMs?: number;
}

/**
 * Checks the postmaster's pid file (no connection needed). When it is gone: the owner restarts the cluster with
 * jittered backoff between attempts; a process that only attached takes the owner lock if the owner has gone,
 * else says once that it waits for the owner.
 */
export class ClusterSupervisor {
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #down = false;
  #attempt = 0;
  #nextTry = 0;
  readonly #o: Required<ClusterSupervisorOptions>;

  constructor(options: ClusterSupervisorOptions) {
    this.#o = { maxAttempts: 5, intervalMs: 1000, ...options };
  }

  start(): void {
    this.#timer = setInterval(() => void this.#check(), this.#o.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #check(): Promise<void> {
    if (this.#busy || !this.#timer) return;
    this.#busy = true;
    try {
      await this.#checkOnce();
    } finally {
      this.#busy = false;
    }
  }

  async #checkOnce(): Promise<void> {
    const { dev, log } = this.#o;
    const where = { dataDir: dev.dataDir, logFile: dev.server.logFile };
    if (dev.server.postmasterPid() !== undefined) {
      if (this.#down) log.info(where, 'embedded Postgres is running again');
      this.#down = false;
      this.#attempt = 0;
      return;
    }
    if (!this.#down) {
      this.#down = true;
      log.warn(where, dev.owned
        ? 'embedded Postgres stopped unexpectedly; restarting it'
        : 'embedded Postgres stopped unexpectedly; the npm start that owns it restarts it (/readyz answers 503 meanwhile)');
    }
    if (!dev.owned && !(await dev.lock.tryAcquire())) return;
    if (Date.now() < this.#nextTry || !this.#timer) return;
    const attempt = ++this.#attempt;
    log.warn({ ...where, attempt, of: this.#o.maxAttempts }, `restarting the embedded Postgres (attempt ${attempt} of ${this.#o.maxAttempts})`);
    try {
      await dev.server.start();
      log.info({ ...where, port: dev.server.port }, 'embedded Postgres restarted');
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0]!.replace(/\.$/, '');
      log.error({ ...where, attempt, err: reason }, 'restarting the embedded Postgres failed');
      if (attempt >= this.#o.maxAttempts) {
        this.stop();
        this.#o.onGiveUp(new PgRelayError('embedded_down',
          `The embedded Postgres in ${dev.dataDir} stopped and could not be restarted after ${attempt} attempts (${reason}); see ${dev.server.logFile}, then start pgrelay again.`,
          { cause: err }));
        return;
      }
      this.#nextTry = Date.now() + backoff(attempt, 500, 4_000);
    }
  }
}
