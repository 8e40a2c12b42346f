// One connection of the ticker as the steps of leading see it: its statements counted, its ticks, waits that end early.
import type pg from 'pg';
import type { TickerPacing, TickerState } from './ticker-options.js';

/** What one call of relay.tick returns. */
export interface TickRow {
  last_seq: string;
  sequenced: number;
  snap: string;
  payloads: string[] | null;
}

/** The ticker on one connection (see `Ticker`): the loops that lead read its state through this, as it is at each call. */
export interface TickerSession {
  readonly pacing: Readonly<TickerPacing>;
  /** The ticker is closing: every loop ends. */
  readonly closed: boolean;
  /** A wake-up arrived since the last tick began. */
  readonly woken: boolean;
  /** Sends a statement on this connection, counted in the ticker's statements. */
  query<R extends pg.QueryResultRow>(q: pg.QueryConfig | string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** One tick: numbers what has committed since the last one; asleep, it renews the lease for `leaseMs`. */
  tick(known: { snap: string | null }, leaseMs?: number | null): Promise<TickRow>;
  /** Waits `ms`, or less if the ticker closes first (or, with `wakeable`, a wake-up arrives). */
  wait(ms: number, wakeable?: boolean): Promise<void>;
  setState(state: TickerState): void;
}
