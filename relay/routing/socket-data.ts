// What the relay keeps per socket: its token's scope, its subscriptions, and its rate-limit and abuse counters.
import type { SubscribeMessage } from '../../client/shared/protocol.js';
import type { Principal } from './auth.js';
import type { Route } from './router.js';
import type { ServerSocket } from '../server/server.js';

/** One subscription of one socket. */
export interface Subscription {
  readonly route: Route;
  /** Set once the socket receives live frames through its topic. */
  topic: string | undefined;
  /** Unsubscribed or socket closed: a catch-up in flight must stop. */
  cancelled: boolean;
  /** The access rule view it was compiled with (rules.ts), when its table has rules. */
  rule: string | undefined;
}

/** What the relay keeps per socket (kept small: there may be 50,000 of these). */
export interface SocketData {
  principal: Principal;
  subs: Map<string, Subscription> | undefined;
  /** Token bucket for incoming messages. */
  tokens: number;
  refilledAt: number;
  /** Malformed or refused messages so far. */
  strikes: number;
  /** Messages dropped for exceeding the rate limit so far. */
  dropped: number;
  closed: boolean;
  /** Resolves waiters when the server reports the send buffer drained. */
  drained: (() => void) | undefined;
  /** An event stream (GET /sse): the subscription its query asked for (none: a token check, or presence only), and whether it joins presence. Undefined for WebSockets. */
  stream: { subscribe: SubscribeMessage | undefined; presence: boolean } | undefined;
  /** Set on a socket opened only to be closed at once with this code and reason (a refused token, explained in-band). */
  refused: { code: number; reason: string } | undefined;
}

/** One of the relay's WebSockets. */
export type RelaySocket = ServerSocket<SocketData>;
