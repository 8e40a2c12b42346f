// Waiting in tests and benchmarks: one sleep, and one poll-until that says what it waited for when it gives up; for
// waits on events (frames, output lines), the same until driven by the events instead of a clock.
import { setTimeout as delay } from 'node:timers/promises';

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return delay(ms);
}

/** Options of {@link until}. */
export interface UntilOptions {
  /**
   * What is awaited, for the error: "timed out after 10000 ms waiting for <what>". Default "a condition". A function is
   * called when the wait gives up, so that it can tell the state then (the last frames, the output so far).
   */
  what?: string | (() => string);
  /** How long to wait. Default 10,000 ms. */
  timeoutMs?: number;
  /** How long between two looks. Default 20 ms. */
  intervalMs?: number;
}

function settings(options: UntilOptions | string): { what: () => string; timeoutMs: number; intervalMs: number } {
  const { what = 'a condition', timeoutMs = 10_000, intervalMs = 20 } = typeof options === 'string' ? { what: options } : options;
  return { what: typeof what === 'function' ? what : () => what, timeoutMs, intervalMs };
}

function timedOut(timeoutMs: number, what: () => string, cause?: unknown): Error {
  return new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`, cause === undefined ? undefined : { cause });
}

/**
 * Looks at `check` until it returns a truthy value (sync or async), and resolves with that value; rejects when
 * `timeoutMs` passed first, naming `what` (and the last error `check` threw, if it threw).
 */
export async function until<T>(check: () => T | Promise<T>, options: UntilOptions | string = {}): Promise<NonNullable<T>> {
  const { what, timeoutMs, intervalMs } = settings(options);
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) throw timedOut(timeoutMs, what, lastError);
    await sleep(intervalMs);
  }
}

/**
 * A check for {@link until} made of assertions: true once `assertions` runs without throwing, e.g.
 * `await until(passes(() => expect(sub.cursor).toBe(2)))`. When the wait gives up, the last failed assertion is the
 * error's cause (vitest prints it, with its diff).
 */
export function passes(assertions: () => void | Promise<void>): () => Promise<true> {
  return async () => {
    await assertions();
    return true;
  };
}

/** Waiting on events: see {@link changes}. */
export interface Changes {
  /** Says that something a waiting check looks at may have changed: every waiting check looks again. */
  changed(): void;
  /**
   * Resolves with `check`'s first truthy value, looked at now and after each `changed()`; rejects naming `what` after
   * `timeoutMs` (default 10,000 ms), or at once with the error `check` throws (e.g. "the process exited first").
   */
  until<T>(check: () => T, options?: Omit<UntilOptions, 'intervalMs'> | string): Promise<NonNullable<T>>;
}

/**
 * {@link until} driven by events instead of a clock: whatever receives frames, lines or connections calls `changed()`,
 * and the checks waiting on them look again then, without polling.
 */
export function changes(): Changes {
  const waiting = new Set<() => void>();
  return {
    changed() {
      for (const look of [...waiting]) look();
    },
    until<T>(check: () => T, options: Omit<UntilOptions, 'intervalMs'> | string = {}) {
      const { what, timeoutMs } = settings(options);
      return new Promise<NonNullable<T>>((resolve, reject) => {
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          waiting.delete(look);
          settle();
        };
        const look = () => {
          try {
            const value = check();
            if (value) finish(() => resolve(value as NonNullable<T>));
          } catch (err) {
            finish(() => reject(err));
          }
        };
        const timer = setTimeout(() => finish(() => reject(timedOut(timeoutMs, what))), timeoutMs);
        waiting.add(look);
        look();
      });
    },
  };
}
