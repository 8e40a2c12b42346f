// How long to wait before reconnect attempt `attempt`: exponential, capped, with full jitter so that clients dropped together do not return together.

/**
 * A delay in milliseconds, uniform in [0, min(max, min · 2^attempt)).
 * `attempt` counts failures since the last success (0 for the first retry).
 * `random` is there for tests; it defaults to `Math.random`.
 */
export function backoff(attempt: number, min: number, max: number, random: () => number = Math.random): number {
  return random() * Math.min(max, min * 2 ** attempt);
}
