// When to fetch a fresh token: read the JWT's `exp` (without verifying: only the relay can) and refresh a little before it.

/** The JWT's `exp` and `iat` in epoch milliseconds; NaN for each the token does not carry as a number (or when it is no JWT). */
export function tokenTimes(token: string): { exp: number; iat: number } {
  let claims: any;
  try {
    claims = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/')));
  } catch {}
  const ms = (v: unknown) => (typeof v == 'number' ? v * 1000 : NaN);
  return { exp: ms(claims?.exp), iat: ms(claims?.iat) };
}

/**
 * Milliseconds from `now` until the token should be replaced: at exp − min(60 s, 10 % of its lifetime)
 * (lifetime from `iat`, or from `now` without one), so short test tokens and hour-long ones both refresh in time.
 * Never less than 1 s (a token that is already nearly expired must not cause a refresh loop) and never more
 * than setTimeout's limit. Undefined for a token without `exp`: it never needs refreshing.
 */
export function refreshDelay(token: string, now = Date.now()): number | undefined {
  const t = tokenTimes(token);
  if (isNaN(t.exp)) return undefined;
  const lifetime = t.exp - (isNaN(t.iat) ? now : t.iat);
  return Math.min(2 ** 31 - 1, Math.max(1000, t.exp - Math.min(60_000, lifetime / 10) - now));
}
