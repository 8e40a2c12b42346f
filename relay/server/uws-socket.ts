// One socket of the native server: uWS calls on a closed socket throw, so the wrapper turns them into no-ops.
import type { SendResult, ServerSocket } from './server.js';
import type { Topics } from './topics.js';
import type { UWS } from './uws-native.js';

/** Where a uWS socket's user data keeps its {@link UwsSocket}. */
export const SOCKET = Symbol('pgrelay.socket');

const sendResults: readonly SendResult[] = ['buffered', 'sent', 'dropped'];

/** One WebSocket of the native server. */
export class UwsSocket<D> implements ServerSocket<D> {
  readonly data: D;
  readonly #ws: UWS.WebSocket<D>;
  readonly #topics: Topics<UwsSocket<D>>;
  /** Ask uWS to compress each frame (it does only where the socket negotiated permessage-deflate). */
  readonly #compress: boolean;
  /** uWS throws on any call to a closed socket: the wrapper turns those calls into no-ops. */
  closed = false;

  constructor(ws: UWS.WebSocket<D>, topics: Topics<UwsSocket<D>>, compress = false) {
    this.#ws = ws;
    this.#topics = topics;
    this.#compress = compress;
    // uWS 20.30 copies the upgrade's user data onto the socket object and returns that object: no second copy is kept
    this.data = ws.getUserData();
  }

  send(frame: string): SendResult {
    return this.closed ? 'dropped' : sendResults[this.#ws.send(frame, false, this.#compress) as number]!;
  }

  bufferedAmount(): number {
    return this.closed ? 0 : this.#ws.getBufferedAmount();
  }

  cork(fn: () => void): void {
    if (this.closed) fn();
    else this.#ws.cork(fn);
  }

  subscribe(topic: string): void {
    if (this.closed) return;
    this.#ws.subscribe(topic);
    this.#topics.join(topic, this);
  }

  unsubscribe(topic: string): void {
    if (this.closed) return;
    this.#ws.unsubscribe(topic);
    this.#topics.leave(topic, this);
  }

  /** uWS closed the socket (and dropped its topics): it leaves ours too. */
  closedNow(): void {
    this.closed = true;
    this.#topics.leaveAll(this);
  }

  end(code: number, reason: string): void {
    if (!this.closed) this.#ws.end(code, reason);
  }
}

export function socketOf<D>(ws: UWS.WebSocket<D>): UwsSocket<D> {
  return (ws.getUserData() as { [SOCKET]: UwsSocket<D> })[SOCKET];
}
