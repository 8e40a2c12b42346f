// A subscription's catch-up: every transaction after its position, from the ring or the log, then its topic, with no gap and no duplicate.
import type { ResetReason } from '../../client/shared/protocol.js';
import type { RelayDb } from '../../db/kysely.js';
import { prunedThrough, streamChanges } from '../../db/log-reader.js';
import type { Metrics } from '../ops/metrics.js';
import type { ChangeFeed } from '../feed/change-feed.js';
import { orderTx } from '../feed/column-order.js';
import { toRelayTx } from '../feed/relay-tx.js';
import type { RingBuffer } from '../feed/ring-buffer.js';
import type { WatchedTables } from '../feed/watched-tables.js';
import type { Router } from './router.js';
import type { RelaySocket as WS, Subscription } from './socket-data.js';
import type { SocketWriter } from './socket-writer.js';

/** How far a subscription's client has been served: set once it holds a consistent position, then the last seq sent. */
export interface Progress {
  from?: number;
}

/** What {@link catchUp} needs from the relay. */
export interface CatchUpOptions {
  db: RelayDb;
  feed: Pick<ChangeFeed, 'position'>;
  ring: RingBuffer;
  router: Router;
  tables: WatchedTables;
  io: SocketWriter;
  metrics: Metrics;
  /** Past half of it buffered, the catch-up waits for the socket to drain to a quarter. */
  maxBackpressure: number;
}

/** How a catch-up ends, in the subscription's lifecycle (relay/routing/subscriptions.ts). */
export interface CatchUpEnds {
  /** Caught up: the subscription joins its topic (called inside the last synchronous stretch). */
  goLive(ws: WS, sub: Subscription): void;
  /** The log no longer holds the position: the client is told to start afresh, and the subscription ends. */
  reset(ws: WS, sub: Subscription, reason: ResetReason, seq: number): void;
}

/**
 * Sends every transaction after `progress.from` for this subscription, then joins its topic. The last step runs
 * from the ring in one synchronous stretch: nothing can be published between the last replayed
 * transaction and the subscribe, so the hand-over has no gap and no duplicate.
 */
export async function catchUp(ws: WS, sub: Subscription, progress: Progress, o: CatchUpOptions, ends: CatchUpEnds): Promise<void> {
  const { ring, router, io, db, feed, metrics } = o;
  let from = progress.from!;
  const d = ws.data;
  const route = sub.route;
  let source: 'ring' | 'log' = 'ring';
  while (!sub.cancelled && !d.closed) {
    if (ring.covers(from)) {
      let budget = o.maxBackpressure / 2 - ws.bufferedAmount();
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
        if (done && !d.closed) ends.goLive(ws, sub);
      });
      if (done) {
        metrics.replays.inc({ source });
        return;
      }
      await io.drain(ws, o.maxBackpressure / 4);
      continue;
    }
    source = 'log';
    if (from < (await prunedThrough(db))) return ends.reset(ws, sub, 'cursor_expired', feed.position);
    const upTo = feed.position;
    const scope = { tenant: route.tenantKey, tables: [route.table] };
    for await (const logged of streamChanges(db, scope, from, upTo)) {
      if (sub.cancelled || d.closed) return;
      for (const frame of router.framesFor(orderTx(toRelayTx(logged), o.tables), route)) io.send(ws, frame);
      progress.from = logged.seq;
      if (ws.bufferedAmount() > o.maxBackpressure / 2) await io.drain(ws, o.maxBackpressure / 4);
    }
    from = progress.from = upTo;
  }
}
