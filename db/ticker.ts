// The ticker: one per database, in whichever process holds its advisory lock. It numbers committed transactions
// (relay.tick) and NOTIFYs them. While the log is quiet it sleeps on LISTEN relay_wake, and the first writer that finds
// it asleep wakes it; every other candidate tries the lock twice a second and takes over when the leader's session ends.
import pg from 'pg';
import { backoff } from '../client/shared/backoff.js';
import { TICKER_LOCK } from '../client/shared/lock-keys.js';


export const TICKER_APPLICATION_NAME = 'pgrelay-ticker';

/** The channel writers NOTIFY (once per transaction, only while the ticker is asleep). */
export const WAKE_CHANNEL = 'relay_wake';

/** How the ticker paces itself. Every field is optional in {@link TickerOptions}. */
export interface TickerPacing {
  /** Wait after a tick that numbered one transaction while awake. Default 1 ms. */
  busyDelayMs: number;
  /**
   * Longest wait after a tick that numbered several: while ticks keep finding more than one transaction the wait
   * doubles up to this, so that under load a tick's fixed cost is shared by a batch. Default 8 ms.
   */
  batchDelayMs: number;
  /**
   * Sleep on LISTEN when a tick finds nothing (default true). `false` keeps polling every `idleDelayMs` instead,
   * as pgrelay 0.2 did: benchmarks compare the two.
   */
  rest: boolean;
  /** While asleep, look at the database at least this often anyway (a wake-up lost with its sender's session). Default 1000 ms. */
  restLookMs: number;
  /** With `rest: false`, the longest wait between two looks while nothing happens. Default 5 ms. */
  idleDelayMs: number;
  /** How often a candidate tries the lock. Default 500 ms (with jitter): a leader that dies is replaced that fast. */
  candidateIntervalMs: number;
}

/** The narrow logger shape the ticker writes to (pino's fits). */
export interface TickerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * What the leader is doing: `awake` ticks on its own, back to back or a few ms apart (writers send nothing); `asleep`
 * waits for a writer's wake-up (and the safety look). `candidate` does not hold the lock.
 */
export type TickerState = 'candidate' | 'awake' | 'asleep';

export interface TickerOptions {
  /** A direct connection URL (not a transaction-mode pooler: the ticker holds a session-level advisory lock and LISTENs). */
  databaseUrl: string;
  log: TickerLog;
  pacing?: Partial<TickerPacing>;
  /** Called after every tick that numbered transactions. */
  onTick?: (sequenced: number, lastSeq: number, ms: number) => void;
  /**
   * Receives, once the tick has committed, the payloads it sent with NOTIFY relay: the process that ticks can publish
   * them at once instead of waiting for its own notification (which still comes, and repeats them).
   */
  onPayloads?: (payloads: string[]) => void;
  /** Called when this process becomes the leader or stops being it. */
  onLeader?: (leader: boolean) => void;
  /** Called when the state changes. */
  onState?: (state: TickerState) => void;
  /** Called for every statement sent (what the ticker costs Postgres, at rest too). */
  onStatement?: () => void;
  /**
   * `false`: the ticker's session does not LISTEN relay_wake; its owner, which LISTENs already, calls {@link Ticker.wake}
   * for each notification instead. Every NOTIFY signals every listening session of the database, so one listener
   * fewer is one process woken fewer per transaction. Default true.
   */
  listen?: boolean;
}

const DEFAULTS: TickerPacing = { busyDelayMs: 1, batchDelayMs: 8, rest: true, restLookMs: 1000, idleDelayMs: 5, candidateIntervalMs: 500 };

/** Stragglers (see {@link Ticker}) are looked at after 1 ms, then twice as long each time, up to this. */
const STRAGGLER_MAX_MS = 1000;

interface TickRow {
  last_seq: string;
  sequenced: number;
  snap: string;
  payloads: string[] | null;
}

/** The oldest transaction still running in a snapshot (`xmin:xmax:xip,…`): every older one has ended. */
export function snapshotXmin(snapshot: string): bigint {
  return BigInt(snapshot.slice(0, snapshot.indexOf(':')));
}

/**
 * Candidate → leader → (connection lost) → candidate. As leader:
 * - **awake**: it ticks, waits a little (longer while batches keep coming, so that a tick's fixed cost is shared),
 *   and ticks again, with the flag `relay.ticker_asleep` at 0 so that writers send nothing;
 * - when a tick finds nothing it goes **asleep**: it sets the flag, a lease it renews at every look so that writers stop
 *   waking a ticker that died (relay.ticker_sleep, which returns its own xid), then
 *   ticks once more. A writer that read the flag before it was set has a smaller xid: it has committed (that tick
 *   numbers it) or is still running. While any transaction older than the flag's is running, the ticker looks again
 *   after 1, 2, 4 … ms (up to 1 s) for such "stragglers". Every other writer finds the flag set and queues one
 *   `NOTIFY relay_wake`, delivered when it commits;
 * - asleep, each wake-up (and a safety look every `restLookMs`) is one tick. A tick that numbers several transactions
 *   means load: it wakes up for good (flag 0) and ticks on its own again.
 * So at rest it sends one statement a second, a lone transaction costs one tick, and under load writers never NOTIFY
 * (a NOTIFY takes Postgres's global notification lock at commit).
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
    this.#pacing = { ...DEFAULTS, ...options.pacing };
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
      // what relay.tick() needs (it sets them itself when missing, at a cost every tick)
      options: '-c TimeZone=UTC -c IntervalStyle=postgres -c enable_seqscan=off -c jit=off -c plan_cache_mode=force_generic_plan -c enable_nestloop=off',
    });
    this.#client = client;
    client.on('error', () => undefined); // surfaces as a failed query below
    client.on('notification', (n) => n.channel === WAKE_CHANNEL && this.wake());
    await client.connect();
    if (this.#closed) return;
    // Polled rather than waited for: a backend waiting on a lock does not notice its client going away, so a closing
    // candidate would leave it behind.
    while (!this.#closed) {
      const { rows } = await this.#query<{ ok: boolean }>(client, 'select pg_try_advisory_lock($1, $2) as ok', [...TICKER_LOCK]);
      if (rows[0]!.ok) break;
      await this.#wait(this.#pacing.candidateIntervalMs * (0.75 + Math.random() / 2));
    }
    if (this.#closed) return;
    // A leader whose process hangs stops ticking; Postgres then ends its session and another candidate takes over.
    // (Asleep, the ticker still looks at least every restLookMs, well inside it.)
    const idleTimeout = Math.max(20_000, 3 * this.#pacing.restLookMs);
    await this.#query(client, `set idle_session_timeout = '${idleTimeout}ms'`).catch(() => undefined);
    await this.#query(client, `set session characteristics as transaction isolation level repeatable read`);
    // before the first tick: a writer that commits after it and finds the ticker asleep must reach this session
    if (this.#o.listen !== false) await this.#query(client, `listen ${WAKE_CHANNEL}`);
    this.#setLeader(true);
    this.#o.log.info({}, 'this process is the ticker');
    await ((await this.#writersWake(client)) ? this.#lead(client) : this.#poll(client));
  }

  /**
   * Whether writers wake this ticker (the rule of relay.capture, with this database's settings): then it may sleep.
   * Where a transaction can be PREPAREd, writers send no NOTIFY unless relay.wake = on (see 1796400000011_ticker-rest.sql).
   */
  async #writersWake(client: pg.Client): Promise<boolean> {
    if (!this.#pacing.rest) return false;
    const { rows: [s] } = await this.#query<{ prepared: number; wake: string }>(client,
      `select current_setting('max_prepared_transactions')::int as prepared, coalesce(current_setting('relay.wake', true), '') as wake`);
    if (s!.wake === 'on' || (s!.wake !== 'off' && s!.prepared === 0)) return true;
    this.#o.log.info({ max_prepared_transactions: s!.prepared, 'relay.wake': s!.wake || null },
      s!.wake === 'off'
        ? 'relay.wake is off for this database: writers do not wake the ticker, so it looks at the database every few milliseconds instead of resting'
        : 'max_prepared_transactions > 0: writers do not wake the ticker (a transaction that sent NOTIFY cannot be PREPAREd), so it looks at the database every few milliseconds instead of resting; if no writer of a watched table uses two-phase commit, ALTER DATABASE … SET relay.wake = on lets it rest (see docs/capture.md)');
    return false;
  }

  /** One tick: numbers what has committed since the last one; asleep, it renews the lease for `leaseMs` (see {@link Ticker}). */
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

  /** The leader's loop (see the class comment): awake while ticks find work, asleep on LISTEN otherwise. */
  async #lead(client: pg.Client): Promise<void> {
    const p = this.#pacing;
    const known = { snap: null as string | null };
    // writers send no wake-up (flag 0) while we tick on our own; unknown at first (a previous leader left it either way)
    let awakeFlag = false;
    const setAwake = async () => {
      if (awakeFlag) return;
      await this.#query(client, { name: 'pgrelay-wake', text: 'select relay.ticker_sleep(false)' });
      awakeFlag = true;
    };
    // Asleep, the ticker holds a lease: writers wake it only until it runs out, so that a ticker that died is not woken
    // at every commit. Renewed at every look; long enough for a look that comes late.
    const leaseMs = Math.max(3_000, 3 * p.restLookMs);
    /** Sets the flag for sleep; returns its transaction's xid (see relay.ticker_sleep). */
    const setAsleep = async () => {
      const { rows } = await this.#query<{ xid: string }>(client, { name: 'pgrelay-sleep', text: 'select relay.ticker_sleep(true, $1)::text as xid', values: [leaseMs] });
      awakeFlag = false;
      return BigInt(rows[0]!.xid);
    };
    let busyDelay = p.busyDelayMs;
    while (!this.#closed) {
      // awake: tick on our own until a tick finds nothing
      this.#setState('awake');
      const { sequenced } = await this.#tick(client, known);
      if (sequenced > 0) {
        busyDelay = sequenced > 1 ? Math.min(p.batchDelayMs, busyDelay * 2) : p.busyDelayMs;
        await this.#wait(busyDelay);
        continue;
      }
      // to sleep: set the flag, then one more tick (it numbers every writer that missed the flag and has committed)
      const flagXid = await setAsleep();
      let row = await this.#tick(client, known, leaseMs);
      if (row.sequenced > 1) {
        await setAwake();
        continue;
      }
      this.#setState('asleep');
      let stragglers = snapshotXmin(row.snap) < flagXid;
      let stragglerWait = 1;
      while (!this.#closed) {
        if (!this.#woken) await this.#wait(stragglers ? stragglerWait : p.restLookMs, true);
        if (this.#closed) return;
        const woken = this.#woken;
        row = await this.#tick(client, known, leaseMs);
        if (stragglers) {
          stragglers = snapshotXmin(row.snap) < flagXid;
          if (!woken) stragglerWait = Math.min(STRAGGLER_MAX_MS, stragglerWait * 2);
        }
        if (row.sequenced > 1) break;
      }
      // load: writers stop sending wake-ups, and we tick on our own again
      await setAwake();
      busyDelay = p.busyDelayMs;
    }
  }

  /** `rest: false`: pgrelay 0.2's loop, polling the snapshot every 1–5 ms and ticking when a transaction finished. */
  async #poll(client: pg.Client): Promise<void> {
    const p = this.#pacing;
    this.#setState('awake');
    await this.#query(client, 'select relay.ticker_sleep(false)');
    const known = { snap: null as string | null };
    let seen = '';
    let emptyStreak = 0;
    let busyDelay = p.busyDelayMs;
    while (!this.#closed) {
      // a snapshot that did not change means no transaction finished: nothing can be waiting for a seq
      const { rows: [now] } = await this.#query<{ s: string }>(client, { name: 'pgrelay-snapshot', text: 'select pg_current_snapshot()::text as s' });
      let sequenced = 0;
      if (now!.s !== seen) {
        sequenced = (await this.#tick(client, known)).sequenced;
        // the tick's snapshot is at least as new as the one just read: no need to look at that one again
        seen = now!.s;
      }
      emptyStreak = sequenced > 0 ? 0 : emptyStreak + 1;
      busyDelay = sequenced > 1 ? Math.min(p.batchDelayMs, busyDelay * 2) : p.busyDelayMs;
      await this.#wait(sequenced > 0 ? busyDelay : Math.min(p.idleDelayMs, 2 ** Math.min(emptyStreak - 1, 20)));
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
