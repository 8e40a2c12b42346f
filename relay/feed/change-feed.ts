// Turns NOTIFY payloads into the gap-free, ordered stream of committed transactions, reading the log whenever it must.
import { backoff } from '../../client/shared/backoff.js';
import type { RelayDb } from '../../db/kysely.js';
import { currentPosition, readTransaction, readTransactions } from '../../db/log-reader.js';
import type { ListenSession } from './listen-session.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import { toRelayTx, type RelayTx } from './relay-tx.js';
import { parseTickPayload, payloadSeq } from '../../db/tick-payload.js';

/** What {@link ChangeFeed} needs. */
export interface ChangeFeedOptions {
  db: RelayDb;
  session: ListenSession;
  log: Logger;
  metrics: Metrics;
  /** Receives every committed transaction exactly once, in seq order. */
  onTransaction: (tx: RelayTx) => void;
  /** Called once before history is read: every transaction after `from` will follow. */
  onStart?: (from: number) => void;
  /** Receives relay_config payloads (watch/unwatch). */
  onConfig: () => void;
  /** How many recent transactions to read back at start, at most (the ring's size)... */
  historyTx: number;
  /** ...and about how many bytes of them (the ring's bytes, as {@link RelayTx.bytes} counts them). */
  historyBytes: number;
  /** How often to compare the log's position with ours when no notification came. Default 5 s. */
  pollIntervalMs?: number;
}

/**
 * Every notification is checked against the last seq: anything missed (a gap, a reference payload, a
 * reconnect, a malformed payload) is read from relay.transactions/relay.changes. All work runs on one
 * promise chain, so transactions leave in seq order whatever needed a database read.
 */
export class ChangeFeed {
  /** -1 until the ring is filled at start: nobody waiting for a position is let through before that. */
  #position = -1;
  /** Listening and caught up after the last (re)connection. */
  #caughtUp = false;
  /** The last log read failed (the database may be restarting). */
  #failing = false;
  #closed = false;
  #chain: Promise<void> = Promise.resolve();
  #waiters: Array<{ seq: number; resolve: () => void }> = [];
  #lastActivity = Date.now();
  #poll: NodeJS.Timeout | undefined;
  readonly #o: ChangeFeedOptions;

  constructor(options: ChangeFeedOptions) {
    this.#o = options;
  }

  /** The last seq delivered to onTransaction. */
  get position(): number {
    return this.#position;
  }

  /** Connected and caught up with the log. */
  get ready(): boolean {
    return this.#caughtUp && !this.#failing && !this.#closed;
  }

  /** Connects, fills recent history from the log, and starts following notifications. */
  async start(): Promise<void> {
    const { session, metrics } = this.#o;
    session.onNotification((channel, payload) => {
      this.#lastActivity = Date.now();
      if (channel === 'relay_config') this.#o.onConfig();
      // the session also carries other channels (presence, the ticker's wake-ups): only relay's payloads are ours
      else if (channel === 'relay') this.#enqueue(() => this.#onPayload(payload));
    });
    session.onState((state) => {
      if (state === 'lost') {
        this.#setCaughtUp(false);
        this.#o.log.warn('LISTEN session lost; reconnecting');
      } else {
        metrics.listenerReconnects.inc();
        this.#o.log.info('LISTEN session back; reading what was committed meanwhile');
        this.#enqueue(() => this.#catchUp());
      }
    });
    session.onError((err) => this.#o.log.error({ err }, 'LISTEN session error'));
    // Notifications can arrive as soon as LISTEN runs, before the ring is filled: hold every task (they all queue on
    // #chain) until it is. Setting the position and emptying the ring while a notification's log read was under way
    // once left the ring with a hole that it claimed to cover.
    let started!: () => void;
    this.#chain = new Promise<void>((resolve) => (started = resolve));
    try {
      // LISTEN first, then read the position (in the first task): nothing committed in between can be missed.
      await session.connect();
      this.#enqueue(() => this.#fillRing());
    } finally {
      started();
    }
    await this.#chain;
    const interval = this.#o.pollIntervalMs ?? 5_000;
    this.#poll = setInterval(() => {
      if (Date.now() - this.#lastActivity >= interval) this.#enqueue(() => this.#catchUp());
    }, interval);
    this.#poll.unref();
  }

  /**
   * NOTIFY relay payloads that did not come through the LISTEN session: this process's own ticks, published as soon as
   * they commit. The same payloads arrive by LISTEN later and are dropped by their seq.
   */
  offer(payloads: readonly string[]): void {
    this.#lastActivity = Date.now();
    for (const p of payloads) this.#enqueue(() => this.#onPayload(p));
  }

  /** Reads everything committed after our position (e.g. when payloads stop coming in-process and LISTEN takes over again). */
  catchUp(): void {
    this.#enqueue(() => this.#catchUp());
  }

  /** Resolves once the feed has delivered `seq` (or immediately). */
  waitFor(seq: number): Promise<void> {
    if (this.#position >= seq) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ seq, resolve }));
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#poll);
    this.#o.metrics.ready.set(0);
    await this.#o.session.close().catch(() => undefined);
  }

  #setCaughtUp(caughtUp: boolean): void {
    this.#caughtUp = caughtUp;
    this.#o.metrics.ready.set(this.ready ? 1 : 0);
  }

  #setFailing(failing: boolean): void {
    this.#failing = failing;
    this.#o.metrics.ready.set(this.ready ? 1 : 0);
  }

  #enqueue(task: () => Promise<void>): void {
    this.#chain = this.#chain.then(() => this.#retrying(task));
  }

  /** Runs `task` until it succeeds (the database may be restarting), unless the feed closes. */
  async #retrying(task: () => Promise<void>): Promise<void> {
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        await task();
        if (this.#failing) this.#setFailing(false);
        return;
      } catch (err) {
        this.#setFailing(true);
        this.#o.log.warn({ err: (err as Error).message, attempt }, 'reading the change log failed; retrying');
        await new Promise((r) => setTimeout(r, 50 + backoff(attempt, 100, 5_000)));
      }
    }
  }

  async #onPayload(raw: string): Promise<void> {
    // a payload already delivered (a second copy: in-process, then by LISTEN) is dropped before it is parsed
    const seen = payloadSeq(raw);
    if (seen !== undefined && seen <= this.#position) return;
    const p = parseTickPayload(raw);
    if (!p) {
      // Something committed, but we cannot tell what: the log can.
      this.#o.log.warn({ payload: raw.slice(0, 200) }, 'unreadable NOTIFY payload; reading the log instead');
      await this.#catchUp();
      return;
    }
    if (p.seq <= this.#position) return;
    if (p.seq > this.#position + 1) {
      // A gap: transactions we were not told about, or seqs burnt by failed commits. The log knows which.
      this.#o.metrics.gapReads.inc({ kind: 'gap' });
      await this.#readLog(p.seq - 1);
    }
    if (p.changes && p.at !== undefined) {
      this.#deliver(toRelayTx({ seq: p.seq, at: p.at, origin: p.origin, changes: p.changes }));
      return;
    }
    this.#o.metrics.gapReads.inc({ kind: 'reference' });
    const tx = await readTransaction(this.#o.db, p.seq);
    if (tx) this.#deliver(toRelayTx(tx));
    else this.#o.log.error({ seq: p.seq }, 'notified transaction not found in the log');
  }

  /**
   * The first task: reads back, newest first, the transactions the ring can hold (by count and by bytes), then
   * delivers them oldest first. Reading back by count alone once read 20,000 transactions of megabyte rows to keep
   * the last 64 MiB of them, and a relay took minutes to start.
   */
  async #fillRing(): Promise<void> {
    const { db, historyTx, historyBytes } = this.#o;
    const start = await currentPosition(db);
    const newest: RelayTx[] = [];
    let bytes = 0;
    let upTo = start;
    while (newest.length < historyTx && bytes <= historyBytes) {
      const page = await readTransactions(db, 0, { upTo, limit: Math.min(100, historyTx - newest.length), newestFirst: true });
      for (const tx of page) {
        const relayTx = toRelayTx(tx);
        newest.push(relayTx);
        bytes += relayTx.bytes;
        if (bytes > historyBytes) break;
      }
      if (page.length === 0) break;
      upTo = page[page.length - 1]!.seq - 1;
    }
    newest.reverse();
    // complete after the seq below the oldest one read (seqs of failed commits have no transaction)
    const from = newest.length > 0 ? newest[0]!.seq - 1 : start;
    this.#position = from;
    this.#o.onStart?.(from);
    for (const tx of newest) this.#deliver(tx);
    this.#advance(start);
    this.#setCaughtUp(true);
  }

  /** Reads everything after our position up to the log's current position, then marks the feed ready. */
  async #catchUp(): Promise<void> {
    this.#lastActivity = Date.now();
    const upTo = await currentPosition(this.#o.db);
    await this.#readLog(upTo);
    this.#setCaughtUp(true);
  }

  /** Delivers every logged transaction with position < seq <= upTo. */
  async #readLog(upTo: number): Promise<void> {
    while (this.#position < upTo && !this.#closed) {
      const batch = await readTransactions(this.#o.db, this.#position, { upTo, limit: 500 });
      for (const tx of batch) this.#deliver(toRelayTx(tx));
      // seqs with no transaction (failed commits) at the end of the range
      if (batch.length < 500) this.#advance(upTo);
    }
  }

  #deliver(tx: RelayTx): void {
    if (tx.seq <= this.#position) return;
    this.#o.metrics.transactions.inc();
    this.#o.onTransaction(tx);
    this.#advance(tx.seq);
  }

  #advance(seq: number): void {
    if (seq <= this.#position) return;
    this.#position = seq;
    this.#o.metrics.position.set(seq);
    if (this.#waiters.length > 0) {
      const due = this.#waiters.filter((w) => w.seq <= seq);
      this.#waiters = this.#waiters.filter((w) => w.seq > seq);
      for (const w of due) w.resolve();
    }
  }
}
