// Presence on the client's side: its listeners, the members as the relay last told them, and when to join or leave.
import type { PresenceMember, PresenceUpdateMessage } from './shared/protocol.js';

/** Called with every member once the relay has sent the list, then after each change with the frame that made it. */
export type PresenceListener = (members: PresenceMember[], update: PresenceUpdateMessage) => void;

/** The listeners of `client.presence`: the client is in presence while it has any. */
export interface PresenceListeners {
  /** Adds a listener: the first joins, a later one gets the current list at once. Returns its removal: the last leaves and forgets the list. */
  add(listener: PresenceListener): () => void;
  /** Applies a `presence` frame to the members and tells every listener; throws what a listener threw. */
  apply(update: PresenceUpdateMessage): void;
  /** The relay welcomed a new socket: joins again if anyone listens. */
  welcomed(): void;
}

/** `join(true)` joins the token's tenant's presence, `join(false)` leaves it. */
export function createPresenceListeners(join: (join: boolean) => void): PresenceListeners {
  const listeners = new Set<PresenceListener>();
  // undefined before the relay's first list
  let members: PresenceMember[] | undefined;
  return {
    add(listener) {
      listeners.add(listener);
      listeners.size > 1 ? members && listener(members, { type: 'presence', members }) : join(true);
      return () => void (listeners.delete(listener) && !listeners.size && (join(false), (members = undefined)));
    },
    apply(update) {
      // a diff replaces the entries of the subs it names (leaves, and joins: a changed name); joins go last
      const named = new Set([...(update.leaves || []), ...(update.joins || [])].map((m) => m.sub));
      members = update.members || (members || []).filter((m) => !named.has(m.sub)).concat(update.joins!);
      for (const listener of listeners) listener(members, update);
    },
    welcomed: () => void (listeners.size && join(true)),
  };
}
