// The client's face: subscriptions that survive reconnects, named events and presence, over one connection to a relay.
import { createConnection, type ClientSubscription, type Status, type StatusChange } from './connection.js';
import { qualifyTable, type ChangeOp, type PresenceMember, type PresenceUpdateMessage } from './shared/protocol.js';
import { createPresenceListeners } from './presence-listeners.js';
import type { RelayClientOptions } from './relay-client-options.js';
import type { RelayError } from './relay-error.js';
import { createStateMachine } from './state-machine.js';
import { createSubscription, type ChangeEvent, type RelayTransaction, type SubscribeOptions, type Subscription, type SubscriptionHandlers } from './subscription.js';
import { subscriptionId } from './subscription-id.js';
import type { TableName, TableRow } from './table-row.js';

export type { Status, StatusChange };

/** A client of one relay; `DB` (a kysely-codegen `DB` interface) types the tables and rows. */
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

/**
 * Connects at once, and again after every drop: with backoff, a fresh token, and every subscription resumed from its
 * cursor. Ends only with `close()`, a fatal close code, or a static token the relay refuses or that has expired.
 */
export function createRelayClient<DB = unknown>(options: RelayClientOptions): RelayClient<DB> {
  const state = createStateMachine<Status>('connecting');
  const subscriptions = new Map<string, ClientSubscription>();
  const presence = createPresenceListeners((join) => send({ type: 'presence', join }));
  let lastError: RelayError | undefined;
  const report = (error: RelayError) => {
    lastError = error;
    options.onError?.(error);
  };
  const { send, close } = createConnection(options, state, report, subscriptions, presence);

  const client: RelayClient<DB> = {
    get status() {
      return state.get();
    },
    get lastError() {
      return lastError;
    },
    onStatus: state.on,
    subscribe(table, subscribeOptions = {}, handlers = {}) {
      const qualified = qualifyTable(table);
      const base = subscriptionId(qualified, subscribeOptions.filter as any, !!subscribeOptions.snapshot);
      let id = base;
      // Same stream twice in one client: the ids must differ, yet stay deterministic.
      for (let n = 2; subscriptions.has(id); n++) id = `${base}:${n}`;
      const subscription: ClientSubscription = createSubscription(id, qualified, subscribeOptions, handlers, options);
      subscriptions.set(id, subscription);
      const start = () => {
        subscription.ready = true;
        if (subscriptions.get(id) == subscription) send(subscription.message());
      };
      const store = options.cursorStore;
      if (store && subscribeOptions.since == null && !subscribeOptions.snapshot)
        Promise.resolve(store.get(id))
          .then((cursor) => {
            if (cursor != null && subscription.cursor == null) subscription.cursor = cursor;
          }, () => {})
          .then(start);
      else start();
      return {
        id,
        get cursor() {
          return subscription.cursor;
        },
        unsubscribe() {
          if (subscriptions.get(id) != subscription) return;
          subscriptions.delete(id);
          // the relay has already dropped an ended subscription: an unsubscribe would only be refused
          subscription.ended || send({ type: 'unsubscribe', id });
        },
      };
    },
    on(event, handler) {
      const colon = event.lastIndexOf(':');
      const op = event.slice(colon + 1);
      return client.subscribe(event.slice(0, colon) as any, {}, { onChange: (change, tx) => (op == '*' || op == change.op) && handler(change.row, change, tx) }).unsubscribe;
    },
    presence: presence.add,
    close,
  };
  return client;
}
