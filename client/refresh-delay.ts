// When to fetch a fresh token: read the JWT's `exp` (without verifying: only the relay can) and refresh a little before it.

/** The claims the client looks at; undefined when the token is not a JWT with a JSON payload. */
export function jwtClaims(token: string): { exp?: unknown; iat?: unknown } | undefined {
  try {
    const claims: unknown = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/')));
    return claims && typeof claims == 'object' ? claims : undefined;
  } catch {
    return undefined;
  }
}

/** The token's expiry in epoch milliseconds, if it has one. */
export function tokenExpiry(token: string): number | undefined {
  const exp = jwtClaims(token)?.exp;
  return typeof exp == 'number' ? exp * 1000 : undefined;
}

/**
 * Milliseconds from `now` until the token should be replaced: at exp − min(60 s, 10 % of its lifetime)
 * (lifetime from `iat`, or from `now` without one), so short test tokens and hour-long ones both refresh in time.
 * Never less than 1 s (a token that is already nearly expired must not cause a refresh loop) and never more
 * than setTimeout's limit. Undefined for a token without `exp`: it never needs refreshing.
 */
export function refreshDelay(token: string, now = Date.now()): number | undefined {
  const exp = tokenExpiry(token);
  if (exp === undefined) return undefined;
  const iat = jwtClaims(token)?.iat;
  const lifetime = exp - (typeof iat == 'number' ? iat * 1000 : now);
  return Math.min(2 ** 31 - 1, Math.max(1000, exp - Math.min(60_000, lifetime / 10) - now));
}
