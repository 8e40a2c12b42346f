// Secrets that pgrelay's own files print as examples: anyone can read them, so the relay refuses to verify tokens with them.

/**
 * Every literal `RELAY_JWT_SECRET` that the README, docs/, examples/ or docker-compose.yml show or have shown. A test
 * reads those files and fails when one shows a secret missing here.
 */
export const PUBLISHED_SECRETS: readonly string[] = Object.freeze([
  // docker-compose.yml's fallback up to 0.2.0 (`${RELAY_JWT_SECRET:-…}`): every deployment that forgot the variable used it
  'dev-only-secret-change-me-0123456789abcdef',
]);

/** True when `secret` is one of the {@link PUBLISHED_SECRETS}. */
export function isPublishedSecret(secret: string): boolean {
  return PUBLISHED_SECRETS.includes(secret);
}
