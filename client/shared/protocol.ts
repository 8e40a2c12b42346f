// The wire protocol shared by the relay and the client: JSON text frames, `type` on every message.

/** A JSON value as it travels on the wire. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** A row as JSON: int8 and numeric values are strings, dates are ISO strings, bytea is `\x…` hex. */
export type Row = Record<string, Json>;

/** Comparisons on one column, AND-ed. Values compare as the column's type does in Postgres (text in code-point order). */
export interface ColumnFilter {
  eq?: Json;
  neq?: Json;
  lt?: Json;
  lte?: Json;
  gt?: Json;
  gte?: Json;
  in?: Json[];
}

/** Column name → comparisons; every column's comparisons must hold. */
export type Filter = Record<string, ColumnFilter>;

/** A comparison's name: a key of {@link ColumnFilter} (the relay checks them against its own list, relay/routing/filter.ts). */
export type FilterOp = keyof ColumnFilter;

/** Client → relay: start a subscription. `since` resumes after a seq; `snapshot` first sends the current rows. */
export interface SubscribeMessage {
  type: 'subscribe';
  /** Chosen by the client, echoed in every frame of the subscription (sockets that use the same id for the same subscription share one serialized frame). */
  id: string;
  /** `schema.table`, or a bare name meaning `public.<name>`. */
  table: string;
  since?: number;
  filter?: Filter;
  snapshot?: boolean;
}

export interface UnsubscribeMessage {
  type: 'unsubscribe';
  id: string;
}

/** Client → relay: a fresh token for the same tenant, before the current one expires. */
export interface AuthMessage {
  type: 'auth';
  token: string;
}

/** Client → relay: an application-level heartbeat (browsers cannot see WebSocket pings); the relay answers `pong`. */
export interface PingMessage {
  type: 'ping';
}

/**
 * Client → relay: join (`true`) or leave (`false`) the presence of the token's tenant. Who joins comes from the token
 * alone (its `sub` and display claim), never from this message; leaving and closing the socket are the same.
 */
export interface PresenceMessage {
  type: 'presence';
  join: boolean;
}

export type ClientMessage = SubscribeMessage | UnsubscribeMessage | AuthMessage | PingMessage | PresenceMessage;

export type ChangeOp = 'insert' | 'update' | 'delete' | 'truncate';

/**
 * One changed row. For `truncate`, `pk` and `row` are null. In a filtered subscription a row that enters the filter arrives as `insert` and one that leaves it as `delete`.
 * `R` is `Row` on the wire; the client narrows it to a table's selectable columns when given a kysely `DB` type.
 */
export interface Change<R extends object = Row> {
  table: string;
  op: ChangeOp;
  pk: Partial<R> | null;
  /** The new row (the old row for deletes), excluded columns removed. */
  row: R | null;
  /** For updates: the previous values of the columns that changed. */
  old?: Partial<R> | null;
}

export interface WelcomeMessage {
  type: 'welcome';
  /** The token's tenant; null for an `all_tenants` token without one. */
  tenant: string | null;
  /** The relay's current position. */
  seq: number;
}

export interface SubscribedMessage {
  type: 'subscribed';
  id: string;
  /** Frames of this subscription follow from this position (exclusive). */
  seq: number;
}

/** One committed transaction's changes for one subscription. A large one is split: same `seq`, `more: true` on all but the last. */
export interface TxMessage<R extends object = Row> {
  type: 'tx';
  sub: string;
  seq: number;
  /** Commit time, ISO 8601. */
  at: string;
  /** `relay.origin` of the writing transaction, if it set one. */
  origin: string | null;
  changes: Array<Change<R>>;
  more?: true;
}

/** The current rows, read in one snapshot at position `seq`; live `tx` frames follow from `seq`. */
export interface SnapshotMessage<R extends object = Row> {
  type: 'snapshot';
  sub: string;
  seq: number;
  rows: R[];
  more: boolean;
}

/**
 * `cursor_expired`: the cursor is older than the retained history. `cursor_ahead`: the cursor is beyond the log.
 * `table_unwatched`: `relay.unwatch` stopped capturing the table; the subscription has ended (the relay dropped it)
 * and subscribing again answers `unknown_table` until the table is watched again.
 */
export type ResetReason = 'cursor_expired' | 'cursor_ahead' | 'table_unwatched';

/** The subscription's cursor cannot be served (or its table is no longer watched): the client must refetch, then follow from `seq`. */
export interface ResetMessage {
  type: 'reset';
  sub: string;
  reason: ResetReason;
  /** The relay's position: subscribe again `since` it after refetching (or ask for a snapshot). */
  seq: number;
}

export type ErrorCode =
  | 'bad_message'
  | 'unknown_type'
  | 'bad_subscription'
  | 'unknown_table'
  | 'table_not_allowed'
  | 'bad_filter'
  | 'duplicate_subscription'
  | 'unknown_subscription'
  | 'too_many_subscriptions'
  | 'bad_token'
  | 'tenant_mismatch'
  | 'rate_limited'
  | 'presence_not_allowed'
  | 'internal';

export interface ErrorMessage {
  type: 'error';
  code: ErrorCode;
  message: string;
  /** The subscription the error is about, when there is one. */
  id?: string;
}

/** Relay → client: the answer to `ping`. */
export interface PongMessage {
  type: 'pong';
}

/** One member of a tenant's presence: a token `sub`, however many sockets and relays it is connected through. */
export interface PresenceMember {
  /** The token's `sub` claim. */
  sub: string;
  /** The token's display claim (`RELAY_PRESENCE_CLAIM`, default `name`), or null. */
  name: string | null;
}

/**
 * Relay → a socket in presence. First `members`: every member of its tenant, sorted by `sub` (itself included once its
 * join has been shared), which replaces the list. Then frames with both `joins` (members who arrived, or whose display
 * name changed) and `leaves` (members whose last socket left, on every relay), each gathering what changed in a batch.
 */
export interface PresenceUpdateMessage {
  type: 'presence';
  members?: PresenceMember[];
  joins?: PresenceMember[];
  leaves?: PresenceMember[];
}

export type ServerMessage = WelcomeMessage | SubscribedMessage | TxMessage | SnapshotMessage | ResetMessage | ErrorMessage | PongMessage | PresenceUpdateMessage;

/** The WebSocket subprotocol both sides speak; a token travels as a second offered protocol `bearer.<jwt>`. */
export const PROTOCOL = 'pgrelay.v1';
export const BEARER_PREFIX = 'bearer.';
/**
 * Offered next to `pgrelay.v1`, it asks the relay to explain a refused token in-band: the upgrade is accepted and the
 * socket closed at once with 4401 (or 4403 for an origin) and the reason, which browsers can read and an HTTP 401 they cannot.
 */
export const REASONS_PROTOCOL = 'pgrelay.reasons';

/** `orders` → `public.orders`; `"Sales".orders` style quoting is not needed: pass `Sales.orders`. */
export function qualifyTable(table: string): string {
  return table.includes('.') ? table : `public.${table}`;
}
