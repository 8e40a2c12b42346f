// The life of one load connection, WebSocket or SSE alike: ready once, failed once (before ready, or when it takes too long), closed once (after ready), or stopped.

/** What a lifecycle reports to (connection.ts's ConnectionHandlers, deliveries aside). */
export interface LifecycleHandlers {
  onReady(compressed: boolean): void;
  onFail(reason: string): void;
  onClose(code: number): void;
}

export interface Lifecycle {
  /** Its subscription is confirmed: `onReady`, once, unless it failed first. */
  ready(compressed: boolean): void;
  /** Before ready: `onFail`, once, and the transport is torn down. */
  fail(reason: string): void;
  /** The transport ended: `onClose` after ready, else a failure (`before` says how). */
  ended(code: number, before: string): void;
  /** Closed by the coordinator: nothing more is reported. */
  stop(): void;
}

/** Reports to `h`; fails with `timeoutReason` when not ready within `timeoutMs`; `teardown` closes the transport. */
export function lifecycle(h: LifecycleHandlers, timeoutMs: number, timeoutReason: string, teardown: () => void): Lifecycle {
  let ready = false;
  let done = false;
  const fail = (reason: string) => {
    if (done || ready) return;
    done = true;
    clearTimeout(timer);
    teardown();
    h.onFail(reason);
  };
  const timer = setTimeout(() => fail(timeoutReason), timeoutMs);
  return {
    ready(compressed) {
      if (ready || done) return;
      ready = true;
      clearTimeout(timer);
      h.onReady(compressed);
    },
    fail,
    ended(code, before) {
      if (ready && !done) {
        done = true;
        h.onClose(code);
      } else fail(before);
    },
    stop() {
      done = true;
      clearTimeout(timer);
      teardown();
    },
  };
}
