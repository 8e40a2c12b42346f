// The connection to a relay: a state machine that reconnects with backoff, refreshes its token, detects dead sockets, and resubscribes every subscription from its cursor.
import { backoff } from './shared/backoff.js';
import { CloseCode, fatalCloseCodes } from './shared/codes.js';
import { BEARER_PREFIX, PROTOCOL, qualifyTable, REASONS_PROTOCOL, type ChangeOp, type ClientMessage, type PresenceMember, type PresenceUpdateMessage, type ServerMessage } from './shared/protocol.js';
import { createPresenceListeners } from './presence-listeners.js';
import { refreshDelay, tokenTimes } from './refresh-delay.js';
import type { RelayClientOptions, WebSocketConstructor, WebSocketLike } from './relay-client-options.js';
import { RelayError } from './relay-error.js';
import { sseSocket } from './sse-socket.js';
import { createStateMachine, type StateChange } from './state-machine.js';
import { createSubscription, type ChangeEvent, type RelayTransaction, type SubscribeOptions, type Subscription, type SubscriptionHandlers, type SubscriptionState } from './subscription.js';
import { subscriptionId } from './subscription-id.js';
import type { TableName, TableRow } from './table-row.js';

/** `connecting` until the first socket opens, `reconnecting` while waiting for or opening a later one, `closed` for good. */
export type Status = 'connecting' | 'open' | 'reconnecting' | 'closed';

export type StatusChange = StateChange<Status>;

export interface RelayClient<DB = unknown> {
  readonly status: Status;
  /** Why the client closed (or the last thing that went wrong); see `RelayError` for the codes. */
  readonly lastError: RelayError | undefined;
  /** Calls `listener` with `{from, to}` on every status change; returns its own unsubscribe. */
  onStatus(listener: (change: StatusChange) => void): () => void;
  /** A bare table name means `public.<name>`. The subscription survives reconnects, resuming from its cursor. */
  subscribe<T extends TableName<DB>>(table: T, options?: SubscribeOptions<TableRow<DB, T>>, handlers?: SubscriptionHandlers<TableRow<DB, T>>): Subscription;
  /**
   * Named events for code that listened to Socket.IO: `'<table>:<op>'` with op `insert`, `update`, `delete`, `truncate` or `*`.
   * The handler gets the row (the old row for a delete, null for a truncate), the change and its transaction. One subscription
   * per call, resumed from its cursor like any other; returns its own unsubscribe.
   */
  on<T extends TableName<DB>>(event: `${T}:${ChangeOp | '*'}`, handler: (row: TableRow<DB, T> | null, change: ChangeEvent<TableRow<DB, T>>, tx: RelayTransaction<TableRow<DB, T>>) => void): () => void;
  /**
   * Joins the presence of the token's tenant (as the token's `sub`) and calls `onChange` with every member once the
   * relay has sent the list, then after each change, with the frame that made it (`members`: a new list; `joins` and
   * `leaves`: who came and went). Joins again after every reconnect. Returns its own unsubscribe: the client leaves
   * presence with its last listener.
   */
  presence(onChange: (members: PresenceMember[], update: PresenceUpdateMessage) => void): () => void;
  /** Closes the socket and stops reconnecting; final. */
  close(): void;
}

// Codes after which the relay itself asks us to come back (restart, slow reader, expired token): no reason to wait long.
const prompt = new Set<number>([CloseCode.GoingAway, CloseCode.Backpressure, CloseCode.TokenExpired]);

type Sub = SubscriptionState & { ready?: boolean };

export function createRelayClient<DB = unknown>(o: RelayClientOptions): RelayClient<DB> {
  const WS: WebSocketConstructor = o.WebSocket ?? (globalThis as any).WebSocket;
  const min = o.backoff?.minMs ?? 500;
  const max = o.backoff?.maxMs ?? 30_000;
  const state = createStateMachine<Status>('connecting');
  const subs = new Map<string, Sub>();
  const g = globalThis as any;
  let ws: WebSocketLike | undefined;
  let attempt = 0;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let beat: ReturnType<typeof setTimeout> | undefined;
  let refresh: ReturnType<typeof setTimeout> | undefined;
  let lastError: RelayError | undefined;
  let fastUntil = 0;
  const sseUrl = o.sseUrl ?? o.url.replace(/^ws/, 'http').replace(/\/ws(\?.*)?$/, '/sse');
  const auto = !o.transport || o.transport == 'auto';
  let sse = o.transport == 'sse';
  // auto: whether the current socket is SSE; whether the next attempt is an SSE check, at once; WebSockets in a row that
  // could not open; of those, in a row, the ones after which an SSE check passed.
  let onSse = sse;
  let probe = false;
  let fails = 0;
  let rescued = 0;
  let welcomed = 0;
  // A WebSocket could not open: check the relay over HTTP after the 1st, 2nd, 4th, 8th… failure (not after each while a
  // relay is down), and after every one once a check has passed.
  const failed = () => (probe = rescued > 0 || !(++fails & (fails - 1)));
  const presence = createPresenceListeners((join) => send({ type: 'presence', join }));

  const report = (e: RelayError) => {
    lastError = e;
    o.onError?.(e);
  };
  // what went wrong in the client's own process (a token function, a handler, a frame): the cause travels with it
  const fail = (code: string, message: string, cause: unknown) => report(new RelayError(code, message, undefined, { cause }));
  // a string cannot change, so neither can what its expiry means
  const fixed = typeof o.token == 'string';
  // Only once welcomed: what is sent earlier would be sent again on welcome.
  const send = (m: ClientMessage) => state.get() == 'open' && ws?.readyState == 1 && ws.send(JSON.stringify(m));
  const closed = () => state.get() == 'closed';
  // The browser's `online` event: the network is back, so skip whatever is left of the backoff.
  const online = () => {
    if (retry) {
      clearTimeout(retry);
      void connect();
    }
  };

  // Closed for good (after reporting why, where there is a why).
  const stop = () => {
    clearTimeout(retry);
    lost();
    g.removeEventListener?.('online', online);
    state.set('closed');
  };

  // The current socket is gone (or must go): forget it and what was half-received on it, then plan the next one.
  const lost = (code?: number, reason?: string) => {
    const s = ws;
    // An open connection just dropped (e.g. a relay restart): for a minute, retry within 3 × minMs so clients are back soon after the relay is.
    if (state.get() == 'open') fastUntil = Date.now() + 6e4;
    ws = undefined;
    clearTimeout(beat);
    clearTimeout(refresh);
    // After a heartbeat timeout (code 0) no closing handshake can complete: drop the connection outright where we can.
    if (s) code === 0 && s.terminate ? s.terminate() : s.close(1000);
    if (closed() || code == null) return;
    if (code == CloseCode.BadToken) {
      report(new RelayError('bad_token', `The relay refused the token: ${reason || 'no reason given'}.`, code));
      // A string cannot change, so retrying cannot help; a token function may return a good token next time, after a backoff.
      if (fixed) return stop();
      fastUntil = 0;
    }
    if (fatalCloseCodes.has(code) || (code == CloseCode.TokenExpired && fixed))
      return report(new RelayError(code == CloseCode.TokenExpired ? 'token_expired' : 'closed', `The relay closed the connection with code ${code}${reason ? ` (${reason})` : ''}.`, code)), stop();
    // Rate limited: a reconnect right away would only be limited again.
    if (code == CloseCode.RateLimited) attempt = Math.max(attempt, 4);
    state.set('reconnecting');
    retry = setTimeout(connect, probe ? 0 : backoff(prompt.has(code) ? 0 : attempt++, min, Date.now() < fastUntil ? Math.min(max, 3 * min) : max));
  };

  // No frame for `idleMs`: ping; still nothing `timeoutMs` later: the connection is half-open, replace it.
  const arm = () => {
    clearTimeout(beat);
    beat = setTimeout(() => {
      send({ type: 'ping' });
      beat = setTimeout(() => lost(0), o.heartbeat?.timeoutMs ?? 15_000);
    }, o.heartbeat?.idleMs ?? 20_000);
  };

  const renew = (token: string) => {
    const d = !fixed && refreshDelay(token);
    if (d)
      refresh = setTimeout(async () => {
        // (a socket lost meanwhile cleared this timer; one lost while the token function runs gets no `auth`)
        const s = ws;
        try {
          const t = await (o.token as () => string | Promise<string>)();
          if (s == ws) send({ type: 'auth', token: t }), renew(t);
        } catch (e) {
          // The relay will close with 4001 at expiry, and the reconnect asks the token function again.
          fail('token_error', 'The token function failed.', e);
        }
      }, d);
  };

  const receive = (data: unknown, token: string) => {
    let m: ServerMessage;
    try {
      m = JSON.parse(data as string);
    } catch (e) {
      return fail('bad_frame', 'The relay sent a frame that is not JSON.', e);
    }
    // Open once the relay has accepted the token: a socket it opened only to explain a refusal never counts as open.
    if (m.type == 'welcome') {
      // An SSE check passed right after a WebSocket could not open: WebSockets are blocked on the way, or a relay was just
      // starting. The first time, try a WebSocket again at once; the second time in a row, SSE for good.
      if (onSse && !sse && !(sse = ++rescued > 1)) return lost(), void connect();
      attempt = 0;
      welcomed = Date.now();
      state.set('open');
      renew(token);
      for (const x of subs.values()) if (x.ready) send(x.message());
      presence.welcomed();
    }
    else if (m.type == 'error' && m.id == null) report(new RelayError(m.code, m.message));
    else if (m.type == 'presence')
      try {
        presence.apply(m);
      } catch (e) {
        fail('handler_error', 'A presence handler threw.', e);
      }
    else {
      const x = subs.get((m as any).sub ?? (m as any).id);
      try {
        if (x?.apply(m)) send(x.message());
        // ended by the relay (its table was unwatched): forget it, unless a handler already subscribed anew under its id
        else if (x?.ended && subs.get(x.id) == x) subs.delete(x.id);
      } catch (e) {
        // A throwing handler must not take the connection down with it.
        fail('handler_error', `A handler of subscription ${x!.id} threw.`, e);
      }
    }
  };

  async function connect() {
    retry = undefined;
    if (closed()) return;
    const src = o.token;
    let token: string;
    try {
      token = fixed ? (src as string) : await (src as () => string | Promise<string>)();
    } catch (e) {
      fail('token_error', 'The token function failed.', e);
      return lost(1006);
    }
    if (closed()) return;
    if (fixed && tokenTimes(token).exp <= Date.now()) return report(new RelayError('token_expired', 'The token has expired.')), stop();
    let s: WebSocketLike;
    onSse = sse || probe;
    probe = false;
    try {
      s = ws = onSse ? sseSocket(sseUrl, token) : new WS(o.url, [PROTOCOL, REASONS_PROTOCOL, BEARER_PREFIX + token]);
    } catch (e) {
      // auto: the fallback is the answer, not an error
      if (auto) failed();
      else fail('closed', `Could not open a WebSocket to ${o.url}.`, e);
      return lost(1006);
    }
    s.onopen = () => s == ws && arm();
    s.onmessage = (e) => {
      if (s != ws) return;
      arm();
      receive(e.data, token);
    };
    s.onclose = (e) => {
      if (s != ws) return;
      const code = e.code || 1006;
      // auto: a WebSocket that closed with no code from the relay (1006, 1015) before its welcome or within 10 s of it
      // could not open; one that lived longer proved WebSockets work. An SSE check that failed too means the relay is down.
      if (auto && !sse)
        if (onSse) rescued = 0;
        else if (state.get() == 'open' && Date.now() - welcomed > 1e4) fails = rescued = 0;
        else if (code == 1006 || code == 1015) failed();
      lost(code, e.reason);
    };
    // `ws` throws an unhandled 'error' without a listener; the close event that follows is what we act on.
    s.onerror = () => {};
  }

  g.addEventListener?.('online', online);
  void connect();

  const api: RelayClient<DB> = {
    get status() {
      return state.get();
    },
    get lastError() {
      return lastError;
    },
    onStatus: state.on,
    subscribe(table, options = {}, handlers = {}) {
      const t = qualifyTable(table);
      const base = subscriptionId(t, options.filter as any, !!options.snapshot);
      let id = base;
      // Same stream twice in one client: the ids must differ, yet stay deterministic.
      for (let n = 2; subs.has(id); n++) id = `${base}:${n}`;
      const x: Sub = createSubscription(id, t, options, handlers, o);
      subs.set(id, x);
      const go = () => {
        x.ready = true;
        if (subs.get(id) == x) send(x.message());
      };
      const store = o.cursorStore;
      if (store && options.since == null && !options.snapshot)
        Promise.resolve(store.get(id))
          .then((c) => {
            if (c != null && x.cursor == null) x.cursor = c;
          }, () => {})
          .then(go);
      else go();
      return {
        id,
        get cursor() {
          return x.cursor;
        },
        unsubscribe() {
          if (subs.get(id) != x) return;
          subs.delete(id);
          // the relay has already dropped an ended subscription: an unsubscribe would only be refused
          x.ended || send({ type: 'unsubscribe', id });
        },
      };
    },
    on(event, handler) {
      const i = event.lastIndexOf(':');
      const op = event.slice(i + 1);
      return api.subscribe(event.slice(0, i) as any, {}, { onChange: (c, tx) => (op == '*' || op == c.op) && handler(c.row, c, tx) }).unsubscribe;
    },
    presence: presence.add,
    close: stop,
  };
  return api;
}
