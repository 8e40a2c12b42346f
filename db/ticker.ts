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
  /** Wait after a tick that numbered transactions. Default 1 ms: at high load a tick's commit paces it anyway. */
  busyDelayMs: number;
  /** First wait after a tick that found nothing; doubles up to `idleDelayMs`. Default 1 ms. */
  idleStepMs: number;
  /** Longest wait between ticks while writers wake the ticker. Default 250 ms (how late a change is if a wake-up is lost). */
  idleDelayMs: number;
  /** Longest wait between ticks without wake-ups. Default 20 ms. */
  pollDelayMs: number;
  /**
   * After this long with nothing to number, the ticker marks itself idle (relay.wake) and writers send one wake-up
   * NOTIFY. Default 20 ms. Wake-ups are off on servers with max_prepared_transactions > 0: a transaction that sent
   * NOTIFY cannot be PREPAREd.
   */
  sleepAfterMs: number;
  /** Use wake-ups at all (false: poll only). Default true. */
  wakeups: boolean;
  /** How often a candidate tries the lock. Default 500 ms (with jitter): a leader that dies is replaced that fast. */
  candidateIntervalMs: number;
}

/** The narrow logger shape the ticker writes to (pino's fits). */
export interface TickerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface TickerOptions {
  /** A direct connection URL (the ticker holds a session-level advisory lock and LISTENs). */
  databaseUrl: string;
  log: TickerLog;
  pacing?: Partial<TickerPacing>;
  /** Called after every tick that numbered transactions. */
  onTick?: (sequenced: number, lastSeq: number, ms: number) => void;
  /** Called when this process becomes the leader or stops being it. */
  onLeader?: (leader: boolean) => void;
}

const DEFAULTS: TickerPacing = { busyDelayMs: 1, idleStepMs: 1, idleDelayMs: 250, pollDelayMs: 20, sleepAfterMs: 20, wakeups: true, candidateIntervalMs: 500 };

interface TickRow {
  last_seq: string;
  sequenced: number;
  snap: string;
}

/**
 * Candidate → leader → (connection lost) → candidate. As leader it ticks in a loop: right after a busy tick, then
 * backing off while nothing happens, then asleep until a writer's wake-up (or `idleDelayMs`).
 */
export class Ticker {
  readonly #o: TickerOptions;
  readonly #pacing: TickerPacing;
  #client: pg.Client | undefined;
  #closed = false;
  #leader = false;
  #running: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #woken = false;

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
    const client = new pg.Client({ connectionString: this.#o.databaseUrl, application_name: TICKER_APPLICATION_NAME, keepAlive: true });
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
    const prepared = Number((await client.query<{ n: string }>(`select current_setting('max_prepared_transactions') as n`)).rows[0]!.n);
    const wakeups = this.#pacing.wakeups && prepared === 0;
    client.on('notification', () => {
      this.#woken = true;
      this.#wake?.();
    });
    if (wakeups) await client.query('listen relay_wake');
    this.#setLeader(true);
    this.#o.log.info({ wakeups }, 'this process is the ticker');

    const p = this.#pacing;
    let known: string | null = null;
    let lastWork = Date.now();
    let emptyStreak = 0;
    let asleep = false;
    let idleParam: boolean | null = wakeups ? false : null; // clears a flag a dead leader may have left set
    while (!this.#closed) {
      this.#woken = false;
      const started = performance.now();
      let row: TickRow;
      try {
        const { rows } = await client.query<TickRow>({
          name: 'pgrelay-tick',
          text: 'select last_seq::text, sequenced, snap::text from relay.tick($1::pg_snapshot, $2::boolean)',
          values: [known, idleParam],
        });
        row = rows[0]!;
      } catch (err) {
        // another ticker numbered the same transactions (a split-brain moment): ours rolled back, try again
        if ((err as { code?: string }).code === '40001' || (err as { code?: string }).code === '23505') continue;
        throw err;
      }
      if (idleParam !== null) asleep = idleParam;
      idleParam = null;
      known = row.snap;
      let delay: number;
      if (row.sequenced > 0) {
        this.#o.onTick?.(row.sequenced, Number(row.last_seq), performance.now() - started);
        lastWork = Date.now();
        emptyStreak = 0;
        delay = p.busyDelayMs;
        if (asleep) idleParam = false;
      } else {
        emptyStreak++;
        delay = Math.min(asleep ? p.idleDelayMs : p.pollDelayMs, p.idleStepMs * 2 ** Math.min(emptyStreak - 1, 20));
        if (wakeups && !asleep && Date.now() - lastWork >= p.sleepAfterMs) {
          // the next tick sets the flag; the ones after it come soon, then slower, to catch writers that read the
          // flag just before it was set (one that then stays open long is found within idleDelayMs)
          idleParam = true;
          emptyStreak = 0;
          delay = 0;
        }
      }
      if (!this.#woken) await this.#sleep(delay);
      if (this.#woken && asleep) idleParam = false;
    }
  }

  #setLeader(leader: boolean): void {
    if (this.#leader === leader) return;
    this.#leader = leader;
    this.#o.onLeader?.(leader);
  }

  /** Waits `ms`, or less if a wake-up or close comes first. */
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
