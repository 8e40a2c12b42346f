// React bindings (React ≥ 18 is an optional peer dependency, imported only here): the connection status, a subscription and presence tied to a component's life.
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import type { PresenceMember } from './shared/protocol.js';
import type { RelayClient, Status } from './relay-client.js';
import type { SubscribeOptions, SubscriptionHandlers } from './subscription.js';
import type { TableName, TableRow } from './table-row.js';

/** The client's status, re-rendering on every change. */
export function useRelayStatus(client: RelayClient<any>): Status {
  const subscribe = useCallback((onChange: () => void) => client.onStatus(onChange), [client]);
  const get = () => client.status;
  return useSyncExternalStore(subscribe, get, get);
}

/**
 * Subscribes while the component is mounted. The subscription is renewed when `client`, `table` or the
 * options' JSON change; handlers may be new functions on every render without resubscribing (the latest are called).
 */
export function useSubscription<DB, T extends TableName<DB>>(
  client: RelayClient<DB>,
  table: T,
  options: SubscribeOptions<TableRow<DB, T>> = {},
  handlers: SubscriptionHandlers<TableRow<DB, T>> = {},
): void {
  const latest = useRef(handlers);
  latest.current = handlers;
  const key = JSON.stringify(options);
  useEffect(() => {
    const h = latest;
    const s = client.subscribe(table, JSON.parse(key), {
      onSnapshot: (rows, seq) => h.current.onSnapshot?.(rows, seq),
      onTransaction: (tx) => h.current.onTransaction?.(tx),
      onChange: (c, tx) => h.current.onChange?.(c, tx),
      onReset: (r) => h.current.onReset?.(r),
      onError: (e) => h.current.onError?.(e),
    });
    return s.unsubscribe;
  }, [client, table, key]);
}

/**
 * The members of the token's tenant in presence, this client's own sub among them: joins while the component is mounted
 * and leaves when the last component using it unmounts. `[]` until the relay's first list; after a reconnect the last
 * list stays until the relay sends the new one.
 */
export function usePresence(client: RelayClient<any>): PresenceMember[] {
  const [members, setMembers] = useState<PresenceMember[]>([]);
  useEffect(() => {
    setMembers((m) => (m.length > 0 ? [] : m)); // another client: not the previous one's members
    return client.presence((list) => setMembers(list));
  }, [client]);
  return members;
}
