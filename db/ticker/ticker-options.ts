// What a ticker is given: its database, its pacing, its logger and the callbacks that watch it; the names it uses in Postgres.
/** The ticker's `application_name` in pg_stat_activity. */
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

/** The pacing of a ticker given none. */
export const DEFAULT_PACING: Readonly<TickerPacing> = { busyDelayMs: 1, batchDelayMs: 8, rest: true, restLookMs: 1000, idleDelayMs: 5, candidateIntervalMs: 500 };

/** What relay.tick() needs of its session, which the ticker's connection sets once (the tick sets them itself when missing, at a cost every tick). */
export const TICKER_SESSION_SETTINGS: Readonly<Record<string, string>> = {
  TimeZone: 'UTC', IntervalStyle: 'postgres', enable_seqscan: 'off', jit: 'off', plan_cache_mode: 'force_generic_plan', enable_nestloop: 'off',
};

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

/** What a ticker is given. */
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
   * `false`: the ticker's session does not LISTEN relay_wake; its owner, which LISTENs already, calls `Ticker.wake`
   * for each notification instead. Every NOTIFY signals every listening session of the database, so one listener
   * fewer is one process woken fewer per transaction. Default true.
   */
  listen?: boolean;
}
