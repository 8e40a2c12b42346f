// The ticker: one per database, in whichever process holds its advisory lock. It numbers committed transactions
// (relay.tick) and NOTIFYs them. While the log is quiet it sleeps on LISTEN relay_wake, and the first writer that finds
// it asleep wakes it; every other candidate tries the lock twice a second and takes over when the leader's session ends.
import pg from 'pg';
import { backoff } from '../../client/shared/backoff.js';
import { becomeLeader } from './become-leader.js';
import { pollLoop } from './poll-loop.js';
import { restLoop, writersWake } from './rest-loop.js';
import { DEFAULT_PACING, TICKER_APPLICATION_NAME, TICKER_SESSION_SETTINGS, WAKE_CHANNEL, type TickerOptions, type TickerPacing, type TickerState } from './ticker-options.js';
import type { TickerSession, TickRow } from './ticker-session.js';

/**
 * Candidate → leader → (connection lost) → candidate. A candidate tries the lock (become-leader.ts); the leader ticks,
 * resting between ticks while the log is quiet where writers wake it (rest-loop.ts), else polling (poll-loop.ts).
 */
export class Ticker {
  readonly #o: TickerOptions;
  readonly #pacing: TickerPacing;
  #client: pg.Client | undefined;
  #closed = false;
  #leader = false;
  #state: TickerState = 'candidate';
  #statements = 0;
  #running: Promise<void> | undefined;
  /** Ends the current wait early (a wake-up or close). */
  #interrupt: (() => void) | undefined;
  /** A wake-up arrived since the last tick began. */
  #woken = false;

  constructor(options: TickerOptions) {
    this.#o = options;
    this.#pacing = { ...DEFAULT_PACING, ...options.pacing };
  }

  /** True while this process holds the ticker lock. */
  get leader(): boolean {
    return this.#leader;
  }

  get state(): TickerState {
    return this.#state;
  }

  /** Statements sent to Postgres since the ticker started (lock attempts included): what it costs at rest. */
  get statements(): number {
    return this.#statements;
  }

  /** A writer's wake-up (or anything that may have committed changes): asleep, the ticker ticks at once. */
  wake(): void {
    this.#woken = true;
    this.#interrupt?.();
  }

  /** Starts competing for the lock in the background; never rejects (connection failures are retried). */
  start(): void {
    this.#running ??= this.#run();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#interrupt?.();
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
      if (!this.#closed) await this.#wait(backoff(attempt, 200, 5_000));
    }
  }

  #query<R extends pg.QueryResultRow>(client: pg.Client, q: pg.QueryConfig | string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    this.#statements++;
    this.#o.onStatement?.();
    return typeof q === 'string' ? client.query<R>(q, values) : client.query<R>(q);
  }

  /** One connection: take the lock, then tick until the connection fails or the ticker closes. */
  async #session(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.#o.databaseUrl, application_name: TICKER_APPLICATION_NAME, keepAlive: true,
      options: Object.entries(TICKER_SESSION_SETTINGS).map(([name, value]) => `-c ${name}=${value}`).join(' '),
    });
    this.#client = client;
    client.on('error', () => undefined); // surfaces as a failed query below
    client.on('notification', (n) => n.channel === WAKE_CHANNEL && this.wake());
    await client.connect();
    if (this.#closed) return;
    const session = this.#sessionOn(client);
    if (!(await becomeLeader(session, this.#o.listen !== false))) return;
    this.#setLeader(true);
    this.#o.log.info({}, 'this process is the ticker');
    await ((await writersWake(session, this.#o.log)) ? restLoop(session) : pollLoop(session));
  }

  /** This ticker on one connection, as the loops that lead see it. */
  #sessionOn(client: pg.Client): TickerSession {
    const self = this;
    return {
      pacing: this.#pacing,
      get closed() {
        return self.#closed;
      },
      get woken() {
        return self.#woken;
      },
      query: (q, values) => this.#query(client, q, values),
      tick: (known, leaseMs) => this.#tick(client, known, leaseMs),
      wait: (ms, wakeable) => this.#wait(ms, wakeable),
      setState: (state) => this.#setState(state),
    };
  }

  /** One tick: numbers what has committed since the last one; asleep, it renews the lease for `leaseMs` (see restLoop). */
  async #tick(client: pg.Client, known: { snap: string | null }, leaseMs: number | null = null): Promise<TickRow> {
    this.#woken = false;
    for (;;) {
      const started = performance.now();
      try {
        const { rows } = await this.#query<TickRow>(client, {
          name: 'pgrelay-tick',
          text: 'select last_seq::text, sequenced, snap::text, payloads from relay.tick($1::pg_snapshot, 200, $2::integer)',
          values: [known.snap, leaseMs],
        });
        const row = rows[0]!;
        known.snap = row.snap;
        if (row.sequenced > 0) {
          this.#o.onTick?.(row.sequenced, Number(row.last_seq), performance.now() - started);
          if (row.payloads) this.#o.onPayloads?.(row.payloads);
        }
        return row;
      } catch (err) {
        // another ticker numbered the same transactions (a split-brain moment): ours rolled back, try again
        const code = (err as { code?: string }).code;
        if (code === '40001' || code === '23505') continue;
        throw err;
      }
    }
  }

  #setLeader(leader: boolean): void {
    if (!leader) this.#setState('candidate');
    if (this.#leader === leader) return;
    this.#leader = leader;
    this.#o.onLeader?.(leader);
  }

  #setState(state: TickerState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#o.onState?.(state);
  }

  /** Waits `ms`, or less if the ticker closes first (or, with `wakeable`, a wake-up arrives). */
  #wait(ms: number, wakeable = false): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        if (self.#interrupt === interrupt) self.#interrupt = undefined;
        resolve();
      }
      const interrupt = () => {
        if (wakeable || this.#closed) done();
      };
      this.#interrupt = interrupt;
    });
  }
}
