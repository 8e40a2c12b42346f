// This relay as a ticker candidate: the ticker (db/ticker/) connected to the LISTEN session, the change feed and the metrics.
import { Ticker } from '../../db/ticker/ticker.js';
import { WAKE_CHANNEL, type TickerPacing } from '../../db/ticker/ticker-options.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { ChangeFeed } from './change-feed.js';
import type { ListenSession } from './listen-session.js';

/** What {@link startTickerCandidate} needs from the relay. */
export interface TickerCandidateOptions {
  databaseUrl: string;
  log: Logger;
  metrics: Metrics;
  /** How the ticker paces itself (benchmarks compare settings). */
  pacing: Partial<TickerPacing> | undefined;
  session: ListenSession;
  feed: Pick<ChangeFeed, 'catchUp' | 'offer'>;
  /** The session LISTENs on relay_wake and hands each wake-up to the ticker, whose own session then need not. */
  wakesThroughSession: boolean;
}

/**
 * Every relay is a ticker candidate; the one holding the lock numbers transactions for all (see db/ticker/). Starts
 * this relay's candidate and returns it (`leader`: this relay ticks; close it when the relay stops).
 */
export function startTickerCandidate(o: TickerCandidateOptions): Ticker {
  const { session, feed, metrics, log } = o;
  const ticker = new Ticker({
    databaseUrl: o.databaseUrl,
    log,
    pacing: o.pacing,
    onLeader: (leader) => {
      metrics.tickerLeader.set(leader ? 1 : 0);
      // While this relay ticks, its own ticks' payloads come in-process (onPayloads), and it stops listening on relay:
      // one notification fewer for its LISTEN backend to send per transaction. When it stops ticking, it listens again
      // first and then reads from the log whatever came meanwhile.
      if (!session.setListening) return;
      if (leader) session.setListening('relay', false).catch((err: unknown) => log.warn({ err }, 'UNLISTEN relay failed; payloads keep coming twice'));
      else session.setListening('relay', true).then(() => feed.catchUp(), (err: unknown) => log.warn({ err }, 'LISTEN relay failed; the LISTEN session will reconnect'));
    },
    onState: (state) => metrics.tickerAsleep.set(state === 'asleep' ? 1 : 0),
    onStatement: () => metrics.tickerStatements.inc(),
    onPayloads: (payloads) => feed.offer(payloads),
    listen: !o.wakesThroughSession,
    onTick: (sequenced, _last, ms) => {
      metrics.tickBatch.observe(sequenced);
      metrics.tickSeconds.observe(ms / 1000);
    },
  });
  session.onNotification((channel) => channel === WAKE_CHANNEL && ticker.wake());
  // wake-ups sent while the session was down were lost: look once
  session.onState((state) => state === 'connected' && ticker.wake());
  ticker.start();
  return ticker;
}
