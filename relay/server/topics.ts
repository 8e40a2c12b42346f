// The sockets of each topic, for both servers: who a frame went to, and who it left over the backpressure limit.
import type { ServerSocket, StreamBehavior } from './server.js';

/** Sockets per topic, and topics per socket (uWS keeps its own natively, but does not say who is in a topic). */
export class Topics<S> {
  readonly #members = new Map<string, Set<S>>();
  readonly #joined = new Map<S, Set<string>>();

  join(topic: string, s: S): void {
    let set = this.#members.get(topic);
    if (!set) this.#members.set(topic, (set = new Set()));
    set.add(s);
    let topics = this.#joined.get(s);
    if (!topics) this.#joined.set(s, (topics = new Set()));
    topics.add(topic);
  }

  leave(topic: string, s: S): void {
    const set = this.#members.get(topic);
    if (set?.delete(s) && set.size === 0) this.#members.delete(topic);
    const topics = this.#joined.get(s);
    if (topics?.delete(topic) && topics.size === 0) this.#joined.delete(s);
  }

  /** A socket that closed leaves every topic it joined. */
  leaveAll(s: S): void {
    for (const topic of this.#joined.get(s) ?? []) this.leave(topic, s);
  }

  members(topic: string): ReadonlySet<S> | undefined {
    return this.#members.get(topic);
  }
}

/**
 * After a frame went to `topic`: hands every member now over `b.overflowAt` to `b.overflow`, before the next frame is
 * published. Checked after every frame, a socket never reaches the hard limit (`maxBackpressure`), above which
 * uWebSockets.js skips frames and closes the socket only later: a frame skipped on a socket that then drained and took
 * the next one would be lost to its client for good (found by the long chaos run).
 */
export function overflowCheck<S extends ServerSocket<unknown> & { closed: boolean }>(topics: Topics<S>, topic: string, b: { overflowAt?: number; overflow?(s: S): void } | undefined): void {
  if (!b?.overflow) return;
  for (const s of topics.members(topic) ?? []) if (!s.closed && s.bufferedAmount() > b.overflowAt!) b.overflow(s);
}

/**
 * A socket or event stream that joins topics, for both servers: subscribe, unsubscribe, and one close that leaves every
 * topic and tells the server, once.
 */
export abstract class TopicMember {
  closed = false;
  readonly #topics: Topics<any>;
  readonly #onClose: (s: any) => void;

  constructor(topics: Topics<any>, onClose: (s: any) => void) {
    this.#topics = topics;
    this.#onClose = onClose;
  }

  subscribe(topic: string): void {
    if (!this.closed) this.#topics.join(topic, this);
  }

  unsubscribe(topic: string): void {
    this.#topics.leave(topic, this);
  }

  /** It closed (ended here, by the peer, or dropped): it leaves its topics and the server is told, once. */
  closedNow(): void {
    if (this.closed) return;
    this.closed = true;
    this.#topics.leaveAll(this);
    this.#onClose(this);
  }
}
