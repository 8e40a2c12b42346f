// Waiting in tests and benchmarks: one sleep, and one poll-until that says what it waited for when it gives up.
import { setTimeout as delay } from 'node:timers/promises';

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return delay(ms);
}

/** Options of {@link until}. */
export interface UntilOptions {
  /** What is awaited, for the error: "timed out after 10000 ms waiting for <what>". Default "a condition". */
  what?: string;
  /** How long to wait. Default 10,000 ms. */
  timeoutMs?: number;
  /** How long between two looks. Default 20 ms. */
  intervalMs?: number;
}

/**
 * Looks at `check` until it returns a truthy value (sync or async), and resolves with that value; rejects when
 * `timeoutMs` passed first, naming `what` (and the last error `check` threw, if it threw).
 */
export async function until<T>(check: () => T | Promise<T>, options: UntilOptions | string = {}): Promise<NonNullable<T>> {
  const { what = 'a condition', timeoutMs = 10_000, intervalMs = 20 } = typeof options === 'string' ? { what: options } : options;
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
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, lastError === undefined ? undefined : { cause: lastError });
    }
    await sleep(intervalMs);
  }
}
