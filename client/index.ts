// pgrelay/client: connect to a relay, subscribe to tables with resumable cursors, and the wire protocol types. Listed by hand: this is the public surface.
export { createRelayClient, type RelayClient, type Status, type StatusChange } from './relay-client.js';
export type { RelayClientOptions, TokenSource, WebSocketConstructor, WebSocketLike } from './relay-client-options.js';
export type { ChangeEvent, RelayTransaction, SubscribeOptions, Subscription, SubscriptionHandlers } from './subscription.js';
export { localStorageCursorStore, type CursorStore, type StorageLike } from './cursor-store.js';
export { RelayError } from './relay-error.js';
export { backoff } from './shared/backoff.js';
export type { SelectType, TableFilter, TableName, TableRow, Wire, WireRow } from './table-row.js';
export * from './shared/protocol.js';
export { CloseCode, fatalCloseCodes, type CloseCodeName } from './shared/codes.js';
