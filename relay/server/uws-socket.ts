// One socket of the native server: uWS calls on a closed socket throw, so the wrapper turns them into no-ops.
import type { SendResult, ServerSocket } from './server.js';
import type { Topics } from './topics.js';
import type { UWS } from './uws-native.js';

/** Where a uWS socket's user data keeps its {@link UwsSocket}. */
export const SOCKET = Symbol('pgrelay.socket');

const sendResults: readonly SendResult[] = ['buffered', 'sent', 'dropped'];

/**
 * A topic nothing is published to. uWS before uWebSockets 143db30 (#1662, merged 2023-09-24) loses the payload of a frame
 * of 16 KiB or more when its header alone goes to the socket's buffer (the kernel's buffer full, uWS's own empty): the
 * stream is corrupt from there, the client fails on invalid UTF-8 or waits for bytes that never come. That happens on
 * a shortcut uWS takes only for sockets in no topic; a socket in this one never takes it.
 */
export const LARGE_SEND_GUARD_TOPIC = '\u0000pgrelay/large-send-guard';

/**
 * Whether build `version` needs {@link LARGE_SEND_GUARD_TOPIC}: 20.30 (the Node 20 build pgrelay installs) has the bug,
 * 20.57 (the newer build) has the fix; the releases between 20.30 and 20.34 were not checked and get the guard too.
 */
export function needsLargeSendGuard(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map((n) => Number.parseInt(n, 10));
  return major < 20 || (major === 20 && minor < 34);
}

/** One WebSocket of the native server. */
export class UwsSocket<D> implements ServerSocket<D> {
  readonly data: D;
  readonly #ws: UWS.WebSocket<D>;
  readonly #topics: Topics<UwsSocket<D>>;
  /** Ask uWS to compress each frame (it does only where the socket negotiated permessage-deflate). */
  readonly #compress: boolean;
  /** uWS throws on any call to a closed socket: the wrapper turns those calls into no-ops. */
  closed = false;

  constructor(ws: UWS.WebSocket<D>, topics: Topics<UwsSocket<D>>, options: { compress?: boolean; largeSendGuard?: boolean } = {}) {
    this.#ws = ws;
    this.#topics = topics;
    this.#compress = options.compress ?? false;
    // uWS 20.30 copies the upgrade's user data onto the socket object and returns that object: no second copy is kept
    this.data = ws.getUserData();
    // not in our topics: nothing counts it, publishes to it, or takes it away (uWS drops it as the socket closes)
    if (options.largeSendGuard) ws.subscribe(LARGE_SEND_GUARD_TOPIC);
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
