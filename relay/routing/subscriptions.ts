// A subscription's lifecycle: subscribe (planned, then live or served from a snapshot or a cursor, with retries), unsubscribe, reset, close.
import type pg from 'pg';
import type { ErrorCode, ResetReason, SubscribeMessage } from '../../client/shared/protocol.js';
import { backoff } from '../../client/shared/backoff.js';
import type { RelayDb } from '../../db/kysely.js';
import { currentPosition, prunedThrough } from '../../db/log-reader.js';
import { isTransientDbError, SqlState } from '../../db/sqlstate.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { ChangeFeed } from '../feed/change-feed.js';
import type { RingBuffer } from '../feed/ring-buffer.js';
import type { WatchedTables } from '../feed/watched-tables.js';
import type { Principal } from './auth.js';
import { catchUp, type CatchUpEnds, type Progress } from './catch-up.js';
import type { Router } from './router.js';
import { ruleViewFor } from './rules.js';
import { readSnapshot } from './snapshot-reader.js';
import type { RelaySocket as WS, Subscription } from './socket-data.js';
import type { SocketWriter } from './socket-writer.js';
import { planSubscription, type SubscriptionPlan, type SubscriptionRefusal } from './subscription-plan.js';

/** What {@link Subscriptions} needs from the relay. */
export interface SubscriptionsOptions {
  db: RelayDb;
  pool: pg.Pool;
  feed: ChangeFeed;
  ring: RingBuffer;
  router: Router;
  tables: WatchedTables;
  io: SocketWriter;
  metrics: Metrics;
  log: Logger;
  maxSubscriptions: number;
  maxFrame: number;
  maxBackpressure: number;
  /** An event stream's subscription ended (reset, error): the stream ends, after the frame that says why. */
  ended(ws: WS): void;
}

/**
 * Every socket's subscriptions. The plan is relay/routing/subscription-plan.ts, the snapshot relay/routing/snapshot-reader.ts
 * and the catch-up with its exactly-once hand-over to live frames relay/routing/catch-up.ts.
 */
export class Subscriptions {
  readonly #o: SubscriptionsOptions;
  /** How a catch-up ends: the subscription joins its topic, or is reset. */
  readonly #ends: CatchUpEnds = {
    goLive: (ws, sub) => this.#goLive(ws, sub),
    reset: (ws, sub, reason, seq) => this.#reset(ws, sub, reason, seq),
  };

  constructor(options: SubscriptionsOptions) {
    this.#o = options;
  }

  /**
   * What a `subscribe` message from `p` would receive (its route, and the access rule view it is compiled with), or why
   * it is refused: the checks that need no database (a table it may see, a filter that compiles).
   */
  plan(p: Principal, msg: SubscribeMessage): SubscriptionPlan | SubscriptionRefusal {
    return planSubscription(this.#o.tables, p, msg);
  }

  /** Handles a `subscribe` message; answers an error frame when it cannot be served. */
  subscribe(ws: WS, msg: SubscribeMessage): void {
    const d = ws.data;
    const subs = (d.subs ??= new Map());
    const refuse = (code: ErrorCode, message: string) => this.#o.io.error(ws, code, message, msg.id);
    if (subs.has(msg.id)) return refuse('duplicate_subscription', `subscription ${msg.id} already exists; unsubscribe it first`);
    if (subs.size >= this.#o.maxSubscriptions) return refuse('too_many_subscriptions', `at most ${this.#o.maxSubscriptions} subscriptions per connection`);
    const plan = this.plan(d.principal, msg);
    if ('code' in plan) return refuse(plan.code, plan.message);
    const { route, rule } = plan;
    const sub: Subscription = { route, topic: undefined, cancelled: false, rule };
    subs.set(msg.id, sub);
    if (!msg.snapshot && msg.since === undefined) {
      // live from now: the current position is the cursor, and the topic carries everything after it
      this.#o.io.send(ws, JSON.stringify({ type: 'subscribed', id: msg.id, seq: this.#o.feed.position }));
      this.#goLive(ws, sub);
      return;
    }
    void this.#serve(ws, sub, msg);
  }

  unsubscribe(ws: WS, id: string): void {
    const d = ws.data;
    const sub = d.subs?.get(id);
    if (!sub) return this.#o.io.error(ws, 'unknown_subscription', `no subscription ${id}`, id);
    this.#drop(ws, sub);
    if (sub.topic) ws.unsubscribe(sub.topic);
  }

  /** `relay.unwatch` ended capture of `table`: every subscription to it gets `reset` with reason `table_unwatched` and ends. */
  unwatched(sockets: Iterable<WS>, table: string): void {
    for (const ws of sockets) {
      const d = ws.data;
      for (const sub of [...(d.subs?.values() ?? [])]) {
        if (sub.route.table !== table) continue;
        if (sub.topic) ws.unsubscribe(sub.topic);
        this.#reset(ws, sub, 'table_unwatched', this.#o.feed.position);
      }
    }
  }

  /**
   * True when a refreshed token (`auth`) sees every subscribed table with rules as the socket's token did (the same role
   * and the same values of the claims its rules name): the subscriptions were compiled for those values.
   */
  sameRules(ws: WS, next: Principal): boolean {
    for (const sub of ws.data.subs?.values() ?? []) {
      const table = this.#o.tables.get(sub.route.table);
      if (!table) continue;
      let key: string | undefined;
      try {
        key = ruleViewFor(table, next)?.key;
      } catch {
        return false;
      }
      if (key !== sub.rule) return false;
    }
    return true;
  }

  /** Forgets every subscription of a socket that closed (the server already dropped its topics). */
  closed(ws: WS): void {
    const d = ws.data;
    for (const sub of d.subs?.values() ?? []) this.#drop(ws, sub);
  }

  #drop(ws: WS, sub: Subscription): void {
    sub.cancelled = true;
    ws.data.subs?.delete(sub.route.id);
    if (sub.topic) this.#o.router.remove(sub.route);
    // an event stream carries one subscription: once it ended (reset, error), so does the stream
    if (ws.data.stream && !ws.data.closed && ws.data.subs?.size === 0) this.#o.ended(ws);
  }

  #goLive(ws: WS, sub: Subscription): void {
    sub.topic = this.#o.router.add(sub.route);
    ws.subscribe(sub.topic);
  }

  #reset(ws: WS, sub: Subscription, reason: ResetReason, seq: number): void {
    this.#o.metrics.resets.inc({ reason });
    this.#drop(ws, sub);
    this.#o.io.send(ws, JSON.stringify({ type: 'reset', sub: sub.route.id, reason, seq }));
  }

  /**
   * Serves a subscription that needs the database (a snapshot, a `since`). When the database goes away meanwhile (a
   * restart, a dropped connection), the relay tries again, with backoff, for as long as the socket and the subscription
   * live: from the last transaction it sent, or with a fresh snapshot when the snapshot itself was cut short (a new
   * `subscribed` frame voids the pages before it). The client never has to notice.
   */
  async #serve(ws: WS, sub: Subscription, msg: SubscribeMessage): Promise<void> {
    const d = ws.data;
    const progress: Progress = {};
    for (let attempt = 0; ; attempt++) {
      try {
        if (progress.from === undefined) await this.#resume(ws, sub, msg, progress);
        else {
          await this.#o.feed.waitFor(progress.from);
          await catchUp(ws, sub, progress, this.#o, this.#ends);
        }
        return;
      } catch (err) {
        if (sub.cancelled || d.closed) return;
        const code = (err as { code?: string }).code;
        const clients = code === SqlState.BadFilter || code?.startsWith('22');
        // A database that went away is waited for as long as the socket lives; anything else unexpected is tried a
        // few times (a connection can fail in more ways than it names) before the client is told.
        if (!clients && (isTransientDbError(err) || attempt < 3)) {
          this.#o.metrics.subscriptionRetries.inc();
          if (attempt === 0 || !isTransientDbError(err)) {
            this.#o.log.warn({ err: (err as Error).message, table: sub.route.table, from: progress.from ?? null, attempt }, 'serving a subscription failed (the database went away?); trying again');
          }
          await new Promise((r) => setTimeout(r, backoff(attempt, 100, 5_000)));
          continue;
        }
        this.#drop(ws, sub);
        // Postgres refusing the snapshot's filter (a data exception, or pgrelay's PR008) is the client's to fix
        if (clients) {
          return this.#o.io.error(ws, 'bad_filter', `Postgres refused the filter: ${(err as Error).message.replace(/^pgrelay: /, '')}`, msg.id);
        }
        this.#o.log.error({ err, table: sub.route.table }, 'subscription failed');
        return this.#o.io.error(ws, 'internal', 'the relay could not serve this subscription; subscribe again', msg.id);
      }
    }
  }

  /** Starts a served subscription: from its snapshot, or from its `since` cursor when the ring or the log still holds it. */
  async #resume(ws: WS, sub: Subscription, msg: SubscribeMessage, progress: Progress): Promise<void> {
    const { feed, db } = this.#o;
    let from: number;
    if (msg.snapshot) {
      from = await readSnapshot(ws, sub, this.#o);
    } else {
      from = msg.since!;
      if (from > feed.position) {
        // A cursor from a relay that is ahead of us (clients switch relays): wait for us to get there,
        // unless the log never had it.
        const logPosition = await currentPosition(db);
        if (from > logPosition) return this.#reset(ws, sub, 'cursor_ahead', logPosition);
      }
      if (from < this.#o.ring.floor && from < (await prunedThrough(db))) {
        return this.#reset(ws, sub, 'cursor_expired', feed.position);
      }
      this.#o.io.send(ws, JSON.stringify({ type: 'subscribed', id: sub.route.id, seq: from }));
    }
    // the client now holds a consistent position: from here on a retry continues, it does not start over
    progress.from = from;
    await feed.waitFor(from);
    await catchUp(ws, sub, progress, this.#o, this.#ends);
  }
}
