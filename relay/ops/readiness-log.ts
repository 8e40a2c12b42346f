// One log line each time the relay's readiness changes, so that an outage and every recovery show in the log.
import type { Logger } from './log.js';

/** What {@link ReadinessLog} watches: the change feed (ready once caught up with the change log). */
export interface Readiness {
  readonly ready: boolean;
  readonly position: number;
}

export class ReadinessLog {
  readonly #feed: Readiness;
  readonly #log: Logger;
  #wasReady = false;
  #notReadySince = Date.now();

  constructor(feed: Readiness, log: Logger) {
    this.#feed = feed;
    this.#log = log;
  }

  /** Logs `caught up` (with how long it took) or `not ready` when readiness changed since the last check; else nothing. */
  check(): void {
    const feed = this.#feed;
    if (feed.ready === this.#wasReady) return;
    this.#wasReady = feed.ready;
    if (this.#wasReady) this.#log.info({ position: feed.position, notReadyMs: Date.now() - this.#notReadySince }, 'caught up');
    else {
      this.#notReadySince = Date.now();
      this.#log.warn({ position: feed.position }, 'not ready: the database is unreachable or the change log is being read back; /readyz answers 503 until caught up');
    }
  }
}
