// A socket's `auth` message: a fresh token is accepted only for the same tenant, tables, rules and presence member.
import { CloseCode } from '../../client/shared/codes.js';
import { AuthError, samePrincipalScope, type Principal, type TokenVerifier } from '../routing/auth.js';
import type { Metrics } from '../ops/metrics.js';
import type { Presence } from '../presence/presence.js';
import type { RelaySocket as WS } from '../routing/socket-data.js';
import type { SocketWriter } from '../routing/socket-writer.js';
import type { Subscriptions } from '../routing/subscriptions.js';

/** What {@link refreshToken} needs from the relay. */
export interface TokenRefreshOptions {
  verifier: TokenVerifier;
  io: SocketWriter;
  metrics: Metrics;
  subscriptions: Pick<Subscriptions, 'sameRules'>;
  presence: Pick<Presence, 'sameMember'>;
}

/**
 * Verifies `token` and makes it the socket's principal. A token for another scope (tenant, tables, the values its
 * subscriptions' rules were compiled with, its presence member) closes the socket with 4003; a refused one answers
 * `bad_token` and keeps the old principal.
 */
export function refreshToken(ws: WS, token: string, o: TokenRefreshOptions): void {
  const d = ws.data;
  const accepted = (next: Principal) => {
    if (d.closed) return;
    if (!samePrincipalScope(d.principal, next) || !o.subscriptions.sameRules(ws, next) || !o.presence.sameMember(ws, next)) {
      return o.io.end(ws, CloseCode.TenantMismatch, 'token for another tenant or other tables');
    }
    d.principal = next;
  };
  const refused = (err: unknown) => {
    if (d.closed) return;
    o.metrics.authFailures.inc({ reason: err instanceof AuthError ? err.reason : 'malformed' });
    o.io.error(ws, 'bad_token', err instanceof AuthError ? err.message : 'token not accepted');
  };
  // HS256 answers at once, before the socket's next message, on either server
  let next: Principal | Promise<Principal>;
  try {
    next = o.verifier.verify(token);
  } catch (err) {
    return refused(err);
  }
  if (next instanceof Promise) next.then(accepted, refused);
  else accepted(next);
}
