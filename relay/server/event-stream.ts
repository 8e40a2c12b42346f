// One Server-Sent Events stream, for both servers: a ServerSocket whose sends are events on a response that stays open.
import type { SendResult, ServerSocket, StreamBehavior } from './server.js';
import { overflowCheck, TopicMember, type Topics } from './topics.js';

/** The headers of every accepted stream: no caching, no proxy buffering (nginx honours `x-accel-buffering`). */
export const STREAM_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store',
  'x-accel-buffering': 'no',
};

/** A comment line: SSE parsers ignore it; it keeps a quiet stream open through proxies. */
export const HEARTBEAT = ': ping\n\n';

/**
 * What each server supplies: writing text to the response (true when it all went to the kernel), ending it, and
 * gathering writes into one system call.
 */
export abstract class EventStream<D> extends TopicMember implements ServerSocket<D> {
  readonly data: D;
  readonly #behavior: StreamBehavior<D>;

  constructor(data: D, behavior: StreamBehavior<D>, topics: Topics<EventStream<any>>, onClose: (s: EventStream<D>) => void) {
    super(topics, onClose);
    this.data = data;
    this.#behavior = behavior;
  }

  /** Writes `text` to the response; false when some of it waits in a buffer. */
  protected abstract write(text: string): boolean;
  /** Ends the response. */
  protected abstract finish(): void;
  abstract bufferedAmount(): number;
  abstract cork(fn: () => void): void;

  send(frame: string): SendResult {
    return this.sendText(this.#behavior.event(frame, this.data));
  }

  /** Writes one event already rendered (a published frame: rendered once for every stream of its topic). */
  sendText(text: string): SendResult {
    if (this.closed || this.bufferedAmount() > this.#behavior.maxBackpressure) return 'dropped';
    return this.write(text) ? 'sent' : 'buffered';
  }

  heartbeat(): void {
    if (!this.closed) this.cork(() => this.write(HEARTBEAT));
  }

  end(code: number, reason: string): void {
    if (this.closed) return;
    const last = this.#behavior.closing(code, reason);
    if (last) this.cork(() => this.write(last));
    // outside the cork: Node 22 loses a write corked together with the response's end
    this.finish();
    this.closedNow();
  }
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
