// One subscription's bookkeeping, free of sockets: its cursor, split transactions, snapshot pages, and the message that (re)starts it.
import type { CursorStore } from './cursor-store.js';
import type { Change, Filter, ResetReason, Row, ServerMessage, SubscribeMessage } from './shared/protocol.js';
import { RelayError } from './relay-error.js';
import type { TableFilter } from './table-row.js';

export interface SubscribeOptions<R = Row> {
  /** Resume after this `seq` (exclusive). Default: the cursor store's value for a subscription without `snapshot`, else live from now. */
  since?: number;
  /** Only rows whose columns pass every comparison. Default: every row the token may see. */
  filter?: TableFilter<R>;
  /** Deliver the current rows first (`onSnapshot`), then follow. Default false. When there is a cursor, it resumes from the cursor instead. */
  snapshot?: boolean;
}

/** A change as handlers see it: `self` is true when the writing transaction's origin is this client's `origin`. */
export interface ChangeEvent<R extends object = Row> extends Change<R> {
  self: boolean;
}

/** One committed transaction's changes for one subscription, applied once even when it came in several frames. */
export interface RelayTransaction<R extends object = Row> {
  seq: number;
  /** Commit time, ISO 8601. */
  at: string;
  origin: string | null;
  self: boolean;
  changes: Array<ChangeEvent<R>>;
}

export interface SubscriptionHandlers<R extends object = Row> {
  /** The current rows (all pages), read at `seq`; changes follow from there. Called again after a `reset` of a snapshot subscription. */
  onSnapshot?(rows: R[], seq: number): void;
  /** Once per transaction, before its `onChange` calls. */
  onTransaction?(tx: RelayTransaction<R>): void;
  onChange?(change: ChangeEvent<R>, tx: RelayTransaction<R>): void;
  /**
   * The cursor was beyond the relay's history: refetch. The client then resubscribes (with a snapshot if one was asked for).
   * With `table_unwatched` the table is no longer captured: the subscription has ended (`onError` follows with that code).
   */
  onReset?(reason: ResetReason): void;
  /** An `error` frame about this subscription (`table_not_allowed`, `bad_filter`, …). */
  onError?(error: RelayError): void;
}

/** What `subscribe()` returns. */
export interface Subscription {
  /** The id on the wire (also the cursor store's key). */
  readonly id: string;
  /** The last `seq` fully applied; undefined before the first. */
  readonly cursor: number | undefined;
  unsubscribe(): void;
}

/** The client's side of a subscription. */
export interface SubscriptionState {
  readonly id: string;
  cursor: number | undefined;
  /** The subscribe message that resumes from the cursor (or starts as first asked). */
  message(): SubscribeMessage;
  /** Applies a frame addressed to this subscription; true when it must be subscribed again (after `reset`). */
  apply(frame: ServerMessage): boolean;
  /** Set once the relay has ended the subscription for good (its table was unwatched). */
  ended?: boolean;
}

export interface SubscriptionContext {
  origin?: string | undefined;
  skipSelf?: boolean | undefined;
  cursorStore?: CursorStore | undefined;
}

export function createSubscription(id: string, table: string, o: SubscribeOptions<any>, h: SubscriptionHandlers<any>, ctx: SubscriptionContext = {}): SubscriptionState {
  // What the frames so far brought: a split transaction's changes, or a snapshot's rows (a snapshot and the transactions
  // after it never overlap: transactions wait for the snapshot's last page).
  let parts: any[] = [];
  /** Adds a frame's items; once its last frame came (no `more`), all of them. */
  const whole = (m: { more?: boolean }, items: readonly unknown[]) => {
    for (const x of items) parts.push(x);
    if (m.more) return undefined;
    const all = parts;
    parts = [];
    return all;
  };
  const advance = (seq: number) => {
    s.cursor = seq;
    ctx.cursorStore?.set(id, seq);
  };
  const s: SubscriptionState = {
    id,
    cursor: o.since,
    message: () => ({ type: 'subscribe', id, table, since: s.cursor, filter: o.filter as Filter | undefined, snapshot: (s.cursor == null && o.snapshot) || undefined }),
    apply(m) {
      if (m.type == 'subscribed') {
        // (Re)starts the subscription, on a new connection or after a reset: what came before it in pieces (a
        // transaction or snapshot cut short by a lost connection) comes again, whole.
        parts = [];
        // A live subscription is at the relay's position from here on: a reconnect must resume there, not "from now".
        if (s.cursor == null && !o.snapshot) advance(m.seq);
      } else if (m.type == 'snapshot') {
        const rows = whole(m, m.rows);
        if (!rows) return false;
        h.onSnapshot?.(rows, m.seq);
        advance(m.seq);
      } else if (m.type == 'tx') {
        // Already applied (a resume overlapping what we had), or left over from before a snapshot we are still waiting for.
        if (s.cursor == null ? o.snapshot : m.seq <= s.cursor) return false;
        const changes: ChangeEvent[] | undefined = whole(m, m.changes);
        if (!changes) return false;
        const self = ctx.origin != null && m.origin === ctx.origin;
        if (!(self && ctx.skipSelf)) {
          for (const c of changes) c.self = self;
          const tx: RelayTransaction = { seq: m.seq, at: m.at, origin: m.origin, self, changes };
          h.onTransaction?.(tx);
          for (const c of changes) h.onChange?.(c, tx);
        }
        advance(m.seq);
      } else if (m.type == 'reset') {
        s.ended = m.reason == 'table_unwatched';
        h.onReset?.(m.reason);
        s.cursor = undefined;
        if (s.ended) {
          h.onError?.(new RelayError(m.reason, `Table ${table} is no longer watched.`));
          return false;
        }
        if (!o.snapshot) advance(m.seq);
        return true;
      } else if (m.type == 'error') {
        h.onError?.(new RelayError(m.code, m.message));
      }
      return false;
    },
  };
  return s;
}
