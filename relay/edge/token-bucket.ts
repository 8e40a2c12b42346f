// A rate limit (a socket's messages, in-band refusals): a token bucket that refills at `rate` tokens a second and holds at most `rate`.

/** A bucket's state: each socket keeps one in its data (`SocketData.tokens` and `refilledAt`). */
export interface TokenBucket {
  /** Tokens left; a message takes one. */
  tokens: number;
  /** When (ms since the epoch) the bucket was last refilled. */
  refilledAt: number;
}

/**
 * Refills `bucket` for the time since its last refill and takes one token: `rate` messages per second, bursts of the
 * same size. False when there was no whole token to take (the message is over the limit).
 */
export function takeToken(bucket: TokenBucket, rate: number, now = Date.now()): boolean {
  bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.refilledAt) / 1000) * rate);
  bucket.refilledAt = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}
