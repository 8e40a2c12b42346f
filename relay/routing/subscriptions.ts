// Subscribe and unsubscribe: validation, snapshot, history (ring or log) and the exactly-once hand-over to live frames.
import type pg from 'pg';
import { qualifyTable, type ErrorCode, type ResetReason, type SubscribeMessage } from '../../client/shared/protocol.js';
import { SafeCursor, type RelayDb } from '../../db/kysely.js';
import { currentPosition, prunedThrough, streamChanges } from '../../db/log-reader.js';
import { isTransientDbError, SqlState } from '../../db/sqlstate.js';
import { backoff } from '../../client/shared/backoff.js';
import type { ChangeFeed } from '../feed/change-feed.js';
import { orderTx, snapshotRowJson } from '../feed/column-order.js';
import { FilterError } from './filter.js';
import { snapshotFrame } from './frames.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { RingBuffer } from '../feed/ring-buffer.js';
import { toRelayTx } from '../feed/relay-tx.js';
import { ALL_TENANTS, type Route, type Router } from './router.js';
import { RuleError, ruleViewFor, withRule } from './rules.js';
import type { Principal } from './auth.js';
import type { RelaySocket as WS, Subscription } from './socket-data.js';
import type { SocketWriter } from './socket-writer.js';
import type { WatchedTables } from '../feed/watched-tables.js';

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

const SNAPSHOT_BATCH = 500;

/** How far a subscription's client has been served: set once it holds a consistent position, then the last seq sent. */
interface Progress {
  from?: number;
}

export class Subscriptions {
  readonly #o: SubscriptionsOptions;

  constructor(options: SubscriptionsOptions) {
    this.#o = options;
  }

  /**
   * What a `subscribe` message from `p` would receive (its route, and the access rule view it is compiled with), or why
   * it is refused: the checks that need no database (a table it may see, a filter that compiles).
   */
  plan(p: Principal, msg: SubscribeMessage): { route: Route; rule: string | undefined } | { code: ErrorCode; message: string } {
    const name = qualifyTable(msg.table);
    const table = this.#o.tables.get(name);
    if (!table) return { code: 'unknown_table', message: `table ${name} is not watched: check the name, or have it captured with pgrelay watch ${name} --tenant-column <column>` };
    if (p.tables && !p.tables.has(name)) return { code: 'table_not_allowed', message: `your token does not allow table ${name}` };
    if (table.tenantColumn === null && !p.allTenants) return { code: 'table_not_allowed', message: `table ${name} has no tenants: only all-tenant tokens may subscribe to it` };
    let filter;
    let rule;
    try {
      rule = ruleViewFor(table, p);
      filter = withRule(rule, table, msg.filter as never);
    } catch (err) {
      if (err instanceof RuleError) return { code: 'table_not_allowed', message: err.message };
      if (err instanceof FilterError) return { code: 'bad_filter', message: err.message };
      throw err;
    }
    return { route: { table: name, tenantKey: p.allTenants ? ALL_TENANTS : p.tenant!, filter, id: msg.id }, rule: rule?.key };
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
          await this.#catchUp(ws, sub, progress);
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

  async #resume(ws: WS, sub: Subscription, msg: SubscribeMessage, progress: Progress): Promise<void> {
    const { feed, db } = this.#o;
    let from: number;
    if (msg.snapshot) {
      from = await this.#snapshot(ws, sub);
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
    await this.#catchUp(ws, sub, progress);
  }

  /**
   * Sends every transaction after `from` for this subscription, then joins its topic. The last step runs
   * from the ring in one synchronous stretch: nothing can be published between the last replayed
   * transaction and the subscribe, so the hand-over has no gap and no duplicate.
   */
  async #catchUp(ws: WS, sub: Subscription, progress: Progress): Promise<void> {
    const { ring, router, io, db, feed, metrics } = this.#o;
    let from = progress.from!;
    const d = ws.data;
    const route = sub.route;
    let source: 'ring' | 'log' = 'ring';
    while (!sub.cancelled && !d.closed) {
      if (ring.covers(from)) {
        let budget = this.#o.maxBackpressure / 2 - ws.bufferedAmount();
        let done = true;
        ws.cork(() => {
          for (const tx of ring.after(from)) {
            if (budget <= 0) {
              done = false;
              break;
            }
            for (const frame of router.framesFor(tx, route)) {
              budget -= frame.length;
              if (ws.send(frame) === 'dropped') io.overflow(ws);
            }
            from = progress.from = tx.seq;
          }
          if (done && !d.closed) this.#goLive(ws, sub);
        });
        if (done) {
          metrics.replays.inc({ source });
          return;
        }
        await io.drain(ws, this.#o.maxBackpressure / 4);
        continue;
      }
      source = 'log';
      if (from < (await prunedThrough(db))) return this.#reset(ws, sub, 'cursor_expired', feed.position);
      const upTo = feed.position;
      const scope = { tenant: route.tenantKey, tables: [route.table] };
      for await (const logged of streamChanges(db, scope, from, upTo)) {
        if (sub.cancelled || d.closed) return;
        for (const frame of router.framesFor(orderTx(toRelayTx(logged), this.#o.tables), route)) io.send(ws, frame);
        progress.from = logged.seq;
        if (ws.bufferedAmount() > this.#o.maxBackpressure / 2) await io.drain(ws, this.#o.maxBackpressure / 4);
      }
      from = progress.from = upTo;
    }
  }

  /**
   * Sends the current rows in pages, read in one REPEATABLE READ snapshot; returns that snapshot's position. A TRUNCATE
   * that committed after the ticker's last tick cannot be read back (PR011): the next tick numbers it, so try again.
   */
  async #snapshot(ws: WS, sub: Subscription): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#snapshotOnce(ws, sub);
      } catch (err) {
        if ((err as { code?: string }).code !== SqlState.SnapshotRetry || attempt >= 100 || sub.cancelled) throw err;
        await new Promise((r) => setTimeout(r, 10 + 10 * Math.min(attempt, 9)));
      }
    }
  }

  async #snapshotOnce(ws: WS, sub: Subscription): Promise<number> {
    const { route } = sub;
    const d = ws.data;
    const client = await this.#o.pool.connect();
    try {
      await client.query('begin isolation level repeatable read read only');
      const tenant = route.tenantKey;
      const table = this.#o.tables.get(route.table);
      // the canonical filter is the same JSON object relay.snapshot takes
      const filter = route.filter?.key ?? null;
      // by oid: a name would need USAGE on the table's schema, which the relay's role has no need of (null: unwatched meanwhile)
      const cursor = client.query(new SafeCursor<{ seq: string; row: string }>(
        'select seq::text as seq, row::text as row from relay.snapshot($1::oid::regclass, $2, $3::jsonb)',
        [table?.relid ?? null, tenant, filter],
      ));
      let rows = await cursor.read(SNAPSHOT_BATCH);
      let open = true;
      let position: number;
      if (rows.length > 0) {
        position = Number(rows[0]!.seq);
      } else {
        await cursor.close();
        open = false;
        position = Number((await client.query<{ p: string }>('select relay.position()::text as p')).rows[0]!.p);
      }
      this.#o.io.send(ws, JSON.stringify({ type: 'subscribed', id: route.id, seq: position }));
      let page: string[] = [];
      let size = 0;
      for (;;) {
        if (sub.cancelled || d.closed) break;
        for (const r of rows) {
          const row = snapshotRowJson(r.row, table, route.filter?.columns);
          if (page.length > 0 && size + row.length > this.#o.maxFrame) {
            this.#o.io.send(ws, snapshotFrame(route.id, position, page, true));
            page = [];
            size = 0;
          }
          page.push(row);
          size += row.length + 1;
        }
        if (rows.length < SNAPSHOT_BATCH) break;
        if (ws.bufferedAmount() > this.#o.maxBackpressure / 2) await this.#o.io.drain(ws, this.#o.maxBackpressure / 4);
        rows = await cursor.read(SNAPSHOT_BATCH);
      }
      if (open) await cursor.close();
      this.#o.io.send(ws, snapshotFrame(route.id, position, page, false));
      await client.query('commit');
      client.release();
      return position;
    } catch (err) {
      // a connection that died is not given back to the pool; one that only failed a statement is, rolled back
      const dead = await client.query('rollback').then(() => false, () => true);
      client.release(dead ? (err as Error) : undefined);
      throw err;
    }
  }
}

