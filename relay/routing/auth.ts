// Client tokens: verification with jose, and what a verified token lets a socket see.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { qualifyTable } from '../../client/shared/protocol.js';
import type { RelayConfig } from '../ops/relay-config.js';

/** What one socket may see; decided by its token alone. */
export interface Principal {
  /** The tenant, or null for an `all_tenants` token without one. */
  readonly tenant: string | null;
  /** Sees every tenant (and tables without tenants). */
  readonly allTenants: boolean;
  /** `schema.table` names the token allows; null = every watched table. */
  readonly tables: ReadonlySet<string> | null;
  /** Expiry, seconds since the epoch; undefined when the token has none. */
  readonly exp: number | undefined;
  /** The role (claim `RELAY_ROLE_CLAIM`, default `role`) that picks the access rule of tables with rules; null or absent: none. */
  readonly role?: string | null;
  /** The verified claims, for rules whose conditions name them (`{"claim": "sub"}`); absent: none. */
  readonly claims?: Readonly<Record<string, unknown>>;
  /** Who the socket is in presence: the `sub` claim (a string of 1 to 256 characters); null or absent: it cannot join. */
  readonly sub?: string | null;
  /** The display name presence shows next to `sub` (claim `RELAY_PRESENCE_CLAIM`, default `name`, a string of 1 to 256 characters); null when absent or of another type. */
  readonly name?: string | null;
}

/** Why a token was refused; each is a label of pgrelay_auth_failures_total. */
export type AuthFailure = 'missing' | 'malformed' | 'too_large' | 'bad_signature' | 'expired' | 'bad_algorithm' | 'wrong_audience' | 'wrong_issuer' | 'no_tenant' | 'bad_claims' | 'keys_unavailable';

export class AuthError extends Error {
  constructor(readonly reason: AuthFailure, message: string) {
    super(message);
    this.name = 'AuthError';
  }
}

/** Tokens larger than this are refused before any cryptography. */
const MAX_TOKEN_BYTES = 8192;

/** Asymmetric algorithms only for JWKS: an HS256 token signed with a public key must never verify. */
const JWKS_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

export interface TokenVerifier {
  /**
   * HS256 tokens are checked synchronously (a Principal or a thrown AuthError): the upgrade then completes
   * inside uWS's own handler, which is both faster and clear of uWS 20.30's async-upgrade cork bug
   * (uNetworking/uWebSockets#1928). JWKS tokens need their keys, so they return a Promise.
   */
  verify(token: string | undefined): Principal | Promise<Principal>;
}

type VerifyOptions = Pick<RelayConfig, 'jwtSecret' | 'jwksUrl' | 'jwtAudience' | 'jwtIssuer' | 'tenantClaim'> & Partial<Pick<RelayConfig, 'roleClaim' | 'presenceClaim'>>;

export function createTokenVerifier(config: VerifyOptions): TokenVerifier {
  if (config.jwksUrl) {
    const keys = createRemoteJWKSet(new URL(config.jwksUrl), { cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    const options = {
      algorithms: JWKS_ALGORITHMS,
      ...(config.jwtAudience ? { audience: config.jwtAudience } : {}),
      ...(config.jwtIssuer ? { issuer: config.jwtIssuer } : {}),
    };
    return {
      async verify(token) {
        precheck(token);
        try {
          const { payload } = await jwtVerify(token!, keys, options);
          return principalOf(payload, config.tenantClaim, config.roleClaim, config.presenceClaim);
        } catch (err) {
          throw err instanceof AuthError ? err : translate(err);
        }
      },
    };
  }
  const secret = Buffer.from(config.jwtSecret ?? '', 'utf8');
  return {
    verify(token) {
      precheck(token);
      return principalOf(verifyHs256(token!, secret, config), config.tenantClaim, config.roleClaim, config.presenceClaim);
    },
  };
}

function precheck(token: string | undefined): void {
  if (!token) throw new AuthError('missing', 'no token: send it as the subprotocol bearer.<jwt> or as ?token=');
  if (token.length > MAX_TOKEN_BYTES) throw new AuthError('too_large', 'token too large');
  if (!/^[\w-]+\.[\w-]+\.[\w-]*$/.test(token)) throw new AuthError('malformed', 'malformed token');
}

/** HS256 with the claim rules jose applies (exp, nbf, iat types; aud and iss when configured); jose decodes. */
function verifyHs256(token: string, secret: Buffer, config: VerifyOptions): JWTPayload {
  let header: ReturnType<typeof decodeProtectedHeader>;
  let payload: JWTPayload;
  try {
    header = decodeProtectedHeader(token);
    payload = decodeJwt(token);
  } catch {
    throw new AuthError('malformed', 'malformed token');
  }
  if (header.alg !== 'HS256') throw new AuthError('bad_algorithm', 'token algorithm not accepted');
  if (header.crit !== undefined || header.b64 !== undefined) throw new AuthError('malformed', 'malformed token');
  const dot = token.lastIndexOf('.');
  const signature = Buffer.from(token.slice(dot + 1), 'base64url');
  const expected = createHmac('sha256', secret).update(token.slice(0, dot)).digest();
  if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
    throw new AuthError('bad_signature', 'token signature invalid');
  }
  const now = Math.floor(Date.now() / 1000);
  for (const claim of ['exp', 'nbf', 'iat'] as const) {
    if (payload[claim] !== undefined && typeof payload[claim] !== 'number') throw new AuthError('bad_claims', `token claim ${claim} not accepted`);
  }
  if (payload.exp !== undefined && payload.exp <= now) throw new AuthError('expired', 'token expired');
  if (payload.nbf !== undefined && payload.nbf > now) throw new AuthError('bad_claims', 'token claim nbf not accepted');
  if (config.jwtAudience) {
    const aud = payload.aud;
    if (!(aud === config.jwtAudience || (Array.isArray(aud) && aud.includes(config.jwtAudience)))) {
      throw new AuthError('wrong_audience', 'token audience not accepted');
    }
  }
  if (config.jwtIssuer && payload.iss !== config.jwtIssuer) throw new AuthError('wrong_issuer', 'token issuer not accepted');
  return payload;
}

function translate(err: unknown): AuthError {
  if (err instanceof errors.JWTExpired) return new AuthError('expired', 'token expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return new AuthError('wrong_audience', 'token audience not accepted');
    if (err.claim === 'iss') return new AuthError('wrong_issuer', 'token issuer not accepted');
    return new AuthError('bad_claims', `token claim ${err.claim} not accepted`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new AuthError('bad_algorithm', 'token algorithm not accepted');
  if (err instanceof errors.JWSSignatureVerificationFailed) return new AuthError('bad_signature', 'token signature invalid');
  if (err instanceof errors.JWKSNoMatchingKey) return new AuthError('bad_signature', 'token signed with an unknown key');
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return new AuthError('keys_unavailable', 'signing keys unavailable');
  return new AuthError('malformed', 'malformed token');
}

/** Reads tenant, tables, all_tenants, the role and the presence identity from verified claims. */
export function principalOf(payload: JWTPayload, tenantClaim: string, roleClaim = 'role', presenceClaim = 'name'): Principal {
  const allTenants = payload.all_tenants === true;
  // own claims only: a claim named "constructor" must not read Object.prototype
  const raw = Object.hasOwn(payload, tenantClaim) ? payload[tenantClaim] : undefined;
  let tenant: string | null = null;
  if (typeof raw === 'string' && raw.length > 0 && raw.length <= 256) tenant = raw;
  else if (typeof raw === 'number' && Number.isSafeInteger(raw)) tenant = String(raw);
  else if (raw !== undefined && raw !== null) throw new AuthError('bad_claims', `claim ${tenantClaim} must be a string or an integer`);
  if (tenant === null && !allTenants) throw new AuthError('no_tenant', `token has no ${tenantClaim} claim`);
  let tables: Set<string> | null = null;
  if (Object.hasOwn(payload, 'tables') && payload.tables !== undefined) {
    if (!Array.isArray(payload.tables) || payload.tables.length > 1000 || !payload.tables.every((t) => typeof t === 'string' && t.length > 0 && t.length < 200)) {
      throw new AuthError('bad_claims', 'claim tables must be an array of table names');
    }
    tables = new Set((payload.tables as string[]).map(qualifyTable));
  }
  const rawRole = Object.hasOwn(payload, roleClaim) ? payload[roleClaim] : undefined;
  if (rawRole !== undefined && rawRole !== null && (typeof rawRole !== 'string' || rawRole.length === 0 || rawRole.length > 256)) {
    throw new AuthError('bad_claims', `claim ${roleClaim} must be a string`);
  }
  const role = typeof rawRole === 'string' ? rawRole : null;
  // presence only: a token without a usable sub or display name is still a good token, it just cannot join presence (or shows no name)
  const sub = shortString(payload.sub);
  const name = shortString(Object.hasOwn(payload, presenceClaim) ? payload[presenceClaim] : undefined);
  return Object.freeze({ tenant, allTenants, tables, exp: typeof payload.exp === 'number' ? payload.exp : undefined, role, claims: Object.freeze({ ...payload }), sub, name });
}

/** A string of 1 to 256 characters, else null. */
function shortString(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 && v.length <= 256 ? v : null;
}

/** True when `next` sees exactly what `current` sees (an `auth` refresh must not widen or move a socket). */
export function samePrincipalScope(current: Principal, next: Principal): boolean {
  if (current.tenant !== next.tenant || current.allTenants !== next.allTenants || (current.role ?? null) !== (next.role ?? null)) return false;
  if (current.tables === null || next.tables === null) return current.tables === next.tables;
  return current.tables.size === next.tables.size && [...current.tables].every((t) => next.tables!.has(t));
}
