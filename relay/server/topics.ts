// The sockets of each topic, for both servers: who a frame went to, and who it left over the backpressure limit.
import type { EventStream } from './event-stream.js';
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

/** Sends `frame` to the event streams of `topic`: rendered as an event once, then the same overflow check as sockets. */
export function publishEvents(streams: Topics<EventStream<any>>, topic: string, frame: string, b: StreamBehavior<any> | undefined): void {
  const members = streams.members(topic);
  if (!members || !b) return;
  const text = b.event(frame);
  for (const s of members) {
    let result = 'sent';
    s.cork(() => {
      result = s.sendText(text);
    });
    if (result === 'dropped') b.overflow(s);
  }
  overflowCheck(streams, topic, b);
}
