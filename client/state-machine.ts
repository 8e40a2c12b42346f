// A lifecycle with string-literal states: one `set` that tells listeners `{from, to}`, and only when the state really changes.

export interface StateChange<S extends string> {
  from: S;
  to: S;
}

export interface StateMachine<S extends string> {
  get(): S;
  set(to: S): void;
  /** Calls `listener` on every change; returns its own unsubscribe. */
  on(listener: (change: StateChange<S>) => void): () => void;
}

export function createStateMachine<S extends string>(initial: S): StateMachine<S> {
  let state = initial;
  const listeners = new Set<(change: StateChange<S>) => void>();
  return {
    get: () => state,
    set(to) {
      if (to === state) return;
      const change = { from: state, to };
      state = to;
      // A copy, so a listener that unsubscribes (or subscribes) while being told does not disturb the others.
      for (const l of [...listeners]) l(change);
    },
    on(l) {
      listeners.add(l);
      return () => void listeners.delete(l);
    },
  };
}
