// The ticker: one per database, in whichever process holds its advisory lock. It numbers committed transactions
// (relay.tick) and NOTIFYs them; every other candidate tries the lock twice a second and takes over when the leader's
// session ends.
import pg from 'pg';
import { backoff } from '../client/backoff.js';

/** Advisory lock key (two int4s) held by the leader for the life of its session; pruning uses (7242, 2). */
export const TICKER_LOCK = [7242, 3] as const;

export const TICKER_APPLICATION_NAME = 'pgrelay-ticker';

/** How the ticker paces itself. Every field is optional in {@link TickerOptions}. */
export interface TickerPacing {
  /** Wait after a tick that numbered one transaction. Default 1 ms. */
  busyDelayMs: number;
  /**
   * Longest wait after a tick that numbered several: while ticks keep finding more than one transaction the wait
   * doubles up to this, so that under load a tick's fixed cost (one statement, ≈ 0.3 ms of Postgres CPU) is shared by a
   * batch. Default 8 ms.
   */
  batchDelayMs: number;
  /** Longest wait between two looks at the database while nothing happens. Default 5 ms (the idle latency it adds on average is half of it). */
  idleDelayMs: number;
  /** How often a candidate tries the lock. Default 500 ms (with jitter): a leader that dies is replaced that fast. */
  candidateIntervalMs: number;
}

/** The narrow logger shape the ticker writes to (pino's fits). */
export interface TickerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface TickerOptions {
  /** A direct connection URL (not a transaction-mode pooler: the ticker holds a session-level advisory lock). */
  databaseUrl: string;
  log: TickerLog;
  pacing?: Partial<TickerPacing>;
  /** Called after every tick that numbered transactions. */
  onTick?: (sequenced: number, lastSeq: number, ms: number) => void;
  /** Called when this process becomes the leader or stops being it. */
  onLeader?: (leader: boolean) => void;
}

const DEFAULTS: TickerPacing = { busyDelayMs: 1, batchDelayMs: 8, idleDelayMs: 5, candidateIntervalMs: 500 };

interface TickRow {
  last_seq: string;
  sequenced: number;
  snap: string;
}

/**
 * Candidate → leader → (connection lost) → candidate. As leader it looks at the database's snapshot in a loop (one
 * trivial query), and ticks when a transaction has finished since: right after a busy tick, backing off to
 * `idleDelayMs` while nothing happens. Writers never signal it: a wake-up check in the capture trigger measured 5 % of a
 * writer's instructions (bench/RESULTS.md, "Capture: where the writer's time goes"); what polling costs instead
 * (latency and Postgres CPU at low rates) is in the same file's capture findings.
 */
export class Ticker {
  readonly #o: TickerOptions;
  readonly #pacing: TickerPacing;
  #client: pg.Client | undefined;
  #closed = false;
  #leader = false;
  #running: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  constructor(options: TickerOptions) {
    this.#o = options;
    this.#pacing = { ...DEFAULTS, ...options.pacing };
  }

  /** True while this process holds the ticker lock. */
  get leader(): boolean {
    return this.#leader;
  }

  /** Starts competing for the lock in the background; never rejects (connection failures are retried). */
  start(): void {
    this.#running ??= this.#run();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    // the server ends the session, and with it the lock
    await this.#client?.end().catch(() => undefined);
    await this.#running;
  }

  async #run(): Promise<void> {
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        await this.#session();
        attempt = 0;
      } catch (err) {
        if (this.#closed) break;
        this.#o.log.warn({ err: (err as Error).message }, 'ticker session ended; reconnecting');
      } finally {
        this.#setLeader(false);
        const c = this.#client;
        this.#client = undefined;
        await c?.end().catch(() => undefined);
      }
      if (!this.#closed) await this.#sleep(backoff(attempt, 200, 5_000));
    }
  }

  /** One connection: take the lock, then tick until the connection fails or the ticker closes. */
  async #session(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.#o.databaseUrl, application_name: TICKER_APPLICATION_NAME, keepAlive: true,
      // what relay.tick() needs (it sets them itself when missing, at a cost every tick)
      options: '-c TimeZone=UTC -c IntervalStyle=postgres -c enable_seqscan=off -c jit=off -c plan_cache_mode=force_generic_plan',
    });
    this.#client = client;
    client.on('error', () => undefined); // surfaces as a failed query below
    await client.connect();
    if (this.#closed) return;
    // Polled rather than waited for: a backend waiting on a lock does not notice its client going away, so a closing
    // candidate would leave it behind.
    while (!this.#closed) {
      const { rows } = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, $2) as ok', [...TICKER_LOCK]);
      if (rows[0]!.ok) break;
      await this.#sleep(this.#pacing.candidateIntervalMs * (0.75 + Math.random() / 2));
    }
    if (this.#closed) return;
    // A leader whose process hangs stops ticking; Postgres then ends its session and another candidate takes over.
    await client.query(`set idle_session_timeout = '20s'`).catch(() => undefined);
    await client.query(`set session characteristics as transaction isolation level repeatable read`);
    this.#setLeader(true);
    this.#o.log.info({}, 'this process is the ticker');

    const p = this.#pacing;
    let known: string | null = null;
    let seen = '';
    let emptyStreak = 0;
    let busyDelay = p.busyDelayMs;
    while (!this.#closed) {
      // a snapshot that did not change means no transaction finished: nothing can be waiting for a seq
      const { rows: [now] } = await client.query<{ s: string }>({ name: 'pgrelay-snapshot', text: 'select pg_current_snapshot()::text as s' });
      let sequenced = 0;
      if (now!.s !== seen) {
        const started = performance.now();
        let row: TickRow;
        try {
          const { rows } = await client.query<TickRow>({
            name: 'pgrelay-tick',
            text: 'select last_seq::text, sequenced, snap::text from relay.tick($1::pg_snapshot)',
            values: [known],
          });
          row = rows[0]!;
        } catch (err) {
          // another ticker numbered the same transactions (a split-brain moment): ours rolled back, try again
          const code = (err as { code?: string }).code;
          if (code === '40001' || code === '23505') continue;
          throw err;
        }
        known = row.snap;
        // the tick's snapshot is at least as new as the one just read: no need to look at that one again
        seen = now!.s;
        sequenced = row.sequenced;
        if (sequenced > 0) this.#o.onTick?.(sequenced, Number(row.last_seq), performance.now() - started);
      }
      emptyStreak = sequenced > 0 ? 0 : emptyStreak + 1;
      busyDelay = sequenced > 1 ? Math.min(p.batchDelayMs, busyDelay * 2) : p.busyDelayMs;
      await this.#sleep(sequenced > 0 ? busyDelay : Math.min(p.idleDelayMs, 2 ** Math.min(emptyStreak - 1, 20)));
    }
  }

  #setLeader(leader: boolean): void {
    if (this.#leader === leader) return;
    this.#leader = leader;
    this.#o.onLeader?.(leader);
  }

  /** Waits `ms`, or less if the ticker closes first. */
  #sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}
