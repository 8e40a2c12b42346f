// The connection to a relay, which outlives its sockets: picks each socket's transport, reconnects with backoff,
// refreshes the token, watches for silence, and resends the subscriptions and presence riding on it at every welcome.
import { backoff } from './shared/backoff.js';
import { CloseCode, fatalCloseCodes } from './shared/codes.js';
import { BEARER_PREFIX, PROTOCOL, REASONS_PROTOCOL, type ClientMessage, type ServerMessage } from './shared/protocol.js';
import type { PresenceListeners } from './presence-listeners.js';
import { refreshDelay, tokenTimes } from './refresh-delay.js';
import type { RelayClientOptions, WebSocketConstructor, WebSocketLike } from './relay-client-options.js';
import { RelayError } from './relay-error.js';
import { sseSocket } from './sse-socket.js';
import type { StateChange, StateMachine } from './state-machine.js';
import type { SubscriptionState } from './subscription.js';

/** `connecting` until the first socket opens, `reconnecting` while waiting for or opening a later one, `closed` for good. */
export type Status = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** What `onStatus` listeners get: the status before and after. */
export type StatusChange = StateChange<Status>;

/** A subscription as the connection keeps it: `ready` once its cursor is known (read from the cursor store, if any). */
export type ClientSubscription = SubscriptionState & { ready?: boolean };

/** What the client does with its connection. */
export interface Connection {
  /** Sends only once welcomed: what is sent earlier would be sent again on welcome. */
  send(message: ClientMessage): void;
  /** Closes the socket and stops reconnecting; final. */
  close(): void;
}

// Codes after which the relay itself asks us to come back (restart, slow reader, expired token): no reason to wait long.
const comeBackSoon = new Set<number>([CloseCode.GoingAway, CloseCode.Backpressure, CloseCode.TokenExpired]);

/**
 * Opens the first socket at once and moves `state` along. At every welcome it sends each ready subscription of
 * `subscriptions` again (from its cursor) and joins `presence` again; it hands each of them its frames. Errors go to `report`.
 */
export function createConnection(
  options: RelayClientOptions,
  state: StateMachine<Status>,
  report: (error: RelayError) => void,
  subscriptions: Map<string, ClientSubscription>,
  presence: PresenceListeners,
): Connection {
  const minMs = options.backoff?.minMs ?? 500;
  const maxMs = options.backoff?.maxMs ?? 30_000;
  // a string cannot change, so neither can what its expiry means
  const fixedToken = typeof options.token == 'string';
  // where the browser's WebSocket and `online` event come from
  const browser = globalThis as any;
  let socket: WebSocketLike | undefined;
  // the backoff's exponent: reconnects since the last welcome
  let attempt = 0;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  let heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  // until when retries wait at most 3 × minMs (an open connection just dropped)
  let fastUntil = 0;

  // The transport choice. 'websocket' and 'sse' are fixed. Under 'auto', a WebSocket that could not open (its constructor
  // threw, or it closed with no code from the relay, 1006 or 1015, before its welcome or within 10 s of it) is followed by
  // an SSE check, at once: after the 1st, 2nd, 4th, 8th… such failure in a row (not after each while a relay is down), and
  // after every one once a check has passed. A check that passes sends the client back to a WebSocket at once the first
  // time; the second time in a row (WebSockets are blocked on the way, not a relay just starting) it stays on SSE for good.
  // A WebSocket that lived longer proves WebSockets work; a check that fails too means the relay is down.
  const WebSocket: WebSocketConstructor = options.WebSocket ?? browser.WebSocket;
  const sseUrl = options.sseUrl ?? options.url.replace(/^ws/, 'http').replace(/\/ws(\?.*)?$/, '/sse');
  const auto = !options.transport || options.transport == 'auto';
  let sseForGood = options.transport == 'sse';
  // the current socket: whether it is SSE, and when the relay welcomed it
  let onSse = sseForGood;
  let welcomedAt = 0;
  // whether the next attempt is an SSE check, made without waiting
  let sseCheckDue = false;
  // WebSockets in a row that could not open; of those, in a row, the ones after which an SSE check passed
  let failures = 0;
  let rescues = 0;
  const couldNotOpen = () => (sseCheckDue = rescues > 0 || !(++failures & (failures - 1)));

  const fail = (code: string, message: string, cause: unknown) => report(new RelayError(code, message, undefined, { cause }));
  const send = (message: ClientMessage) => state.get() == 'open' && socket?.readyState == 1 && socket.send(JSON.stringify(message));
  const closed = () => state.get() == 'closed';
  // The network is back: skip whatever is left of the backoff.
  const online = () => {
    if (retryTimer) {
      clearTimeout(retryTimer);
      void connect();
    }
  };

  // Closed for good (after reporting why, where there is a why).
  const stop = () => {
    clearTimeout(retryTimer);
    lost();
    browser.removeEventListener?.('online', online);
    state.set('closed');
  };

  // The current socket is gone (or must go): forget it and its timers, then plan the next one.
  const lost = (code?: number, reason?: string) => {
    const gone = socket;
    // An open connection just dropped (e.g. a relay restart): for a minute, retry within 3 × minMs so clients are back soon after the relay is.
    if (state.get() == 'open') fastUntil = Date.now() + 6e4;
    socket = undefined;
    clearTimeout(heartbeatTimer);
    clearTimeout(refreshTimer);
    // After a heartbeat timeout (code 0) no closing handshake can complete: drop the connection outright where we can.
    if (gone) code === 0 && gone.terminate ? gone.terminate() : gone.close(1000);
    if (closed() || code == null) return;
    if (code == CloseCode.BadToken) {
      report(new RelayError('bad_token', `The relay refused the token: ${reason || 'no reason given'}.`, code));
      // A string cannot change, so retrying cannot help; a token function may return a good token next time, after a backoff.
      if (fixedToken) return stop();
      fastUntil = 0;
    }
    if (fatalCloseCodes.has(code) || (code == CloseCode.TokenExpired && fixedToken))
      return report(new RelayError(code == CloseCode.TokenExpired ? 'token_expired' : 'closed', `The relay closed the connection with code ${code}${reason ? ` (${reason})` : ''}.`, code)), stop();
    // Rate limited: a reconnect right away would only be limited again.
    if (code == CloseCode.RateLimited) attempt = Math.max(attempt, 4);
    state.set('reconnecting');
    retryTimer = setTimeout(connect, sseCheckDue ? 0 : backoff(comeBackSoon.has(code) ? 0 : attempt++, minMs, Date.now() < fastUntil ? Math.min(maxMs, 3 * minMs) : maxMs));
  };

  // The heartbeat, restarted by every frame: no frame for `idleMs`, ping; still nothing `timeoutMs` later, the
  // connection is half-open: replace it.
  const restartHeartbeat = () => {
    clearTimeout(heartbeatTimer);
    heartbeatTimer = setTimeout(() => {
      send({ type: 'ping' });
      heartbeatTimer = setTimeout(() => lost(0), options.heartbeat?.timeoutMs ?? 15_000);
    }, options.heartbeat?.idleMs ?? 20_000);
  };

  // Shortly before the token expires, asks the token function for a fresh one and sends it.
  const refreshToken = (token: string) => {
    const delay = !fixedToken && refreshDelay(token);
    if (delay)
      refreshTimer = setTimeout(async () => {
        // (a socket lost meanwhile cleared this timer; one lost while the token function runs gets no `auth`)
        const current = socket;
        try {
          const fresh = await (options.token as () => string | Promise<string>)();
          if (current == socket) send({ type: 'auth', token: fresh }), refreshToken(fresh);
        } catch (e) {
          // The relay will close with 4001 at expiry, and the reconnect asks the token function again.
          fail('token_error', 'The token function failed.', e);
        }
      }, delay);
  };

  const receive = (data: unknown, token: string) => {
    let message: ServerMessage;
    try {
      message = JSON.parse(data as string);
    } catch (e) {
      return fail('bad_frame', 'The relay sent a frame that is not JSON.', e);
    }
    // Open once the relay has accepted the token: a socket it opened only to explain a refusal never counts as open.
    if (message.type == 'welcome') {
      // an SSE check that passed: back to a WebSocket at once, unless this was the second in a row
      if (onSse && !sseForGood && !(sseForGood = ++rescues > 1)) return lost(), void connect();
      attempt = 0;
      welcomedAt = Date.now();
      state.set('open');
      refreshToken(token);
      for (const subscription of subscriptions.values()) if (subscription.ready) send(subscription.message());
      presence.welcomed();
    } else if (message.type == 'error' && message.id == null) report(new RelayError(message.code, message.message));
    else if (message.type == 'presence')
      try {
        presence.apply(message);
      } catch (e) {
        fail('handler_error', 'A presence handler threw.', e);
      }
    else {
      const subscription = subscriptions.get((message as any).sub ?? (message as any).id);
      try {
        if (subscription?.apply(message)) send(subscription.message());
        // ended by the relay (its table was unwatched): forget it, unless a handler already subscribed anew under its id
        else if (subscription?.ended && subscriptions.get(subscription.id) == subscription) subscriptions.delete(subscription.id);
      } catch (e) {
        // A throwing handler must not take the connection down with it.
        fail('handler_error', `A handler of subscription ${subscription!.id} threw.`, e);
      }
    }
  };

  async function connect() {
    retryTimer = undefined;
    if (closed()) return;
    const source = options.token;
    let token: string;
    try {
      token = fixedToken ? (source as string) : await (source as () => string | Promise<string>)();
    } catch (e) {
      fail('token_error', 'The token function failed.', e);
      return lost(1006);
    }
    if (closed()) return;
    if (fixedToken && tokenTimes(token).exp <= Date.now()) return report(new RelayError('token_expired', 'The token has expired.')), stop();
    let opened: WebSocketLike;
    onSse = sseForGood || sseCheckDue;
    sseCheckDue = false;
    try {
      opened = socket = onSse ? sseSocket(sseUrl, token) : new WebSocket(options.url, [PROTOCOL, REASONS_PROTOCOL, BEARER_PREFIX + token]);
    } catch (e) {
      // auto: the fallback is the answer, not an error
      if (auto) couldNotOpen();
      else fail('closed', `Could not open a WebSocket to ${options.url}.`, e);
      return lost(1006);
    }
    opened.onopen = () => opened == socket && restartHeartbeat();
    opened.onmessage = (e) => {
      if (opened != socket) return;
      restartHeartbeat();
      receive(e.data, token);
    };
    opened.onclose = (e) => {
      if (opened != socket) return;
      const code = e.code || 1006;
      // Evidence for the transport choice: a failed SSE check ends the run of rescues; a WebSocket welcomed more than 10 s
      // ago proved WebSockets work; one that closed sooner without a code from the relay could not open.
      if (auto && !sseForGood)
        if (onSse) rescues = 0;
        else if (state.get() == 'open' && Date.now() - welcomedAt > 1e4) failures = rescues = 0;
        else if (code == 1006 || code == 1015) couldNotOpen();
      lost(code, e.reason);
    };
    // `ws` throws an unhandled 'error' without a listener; the close event that follows is what we act on.
    opened.onerror = () => {};
  }

  browser.addEventListener?.('online', online);
  void connect();

  return { send, close: stop };
}
