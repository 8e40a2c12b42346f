// The WebSocket upgrade: token and origin checked before the socket exists; the server answers with a socket or plain HTTP.
import { CloseCode } from '../../client/shared/codes.js';
import { BEARER_PREFIX, PROTOCOL, REASONS_PROTOCOL } from '../../client/shared/protocol.js';
import { AuthError, type Principal, type TokenVerifier } from '../routing/auth.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { Refusals } from './refusals.js';
import type { HttpRequest, UpgradeDecision } from '../server/server.js';
import type { SocketData } from '../routing/socket-data.js';

export interface UpgradeOptions {
  verifier: TokenVerifier;
  allowedOrigins: readonly string[] | undefined;
  rateLimit: number;
  metrics: Metrics;
  log: Logger;
  refusals: Refusals;
}

/** A principal that sees nothing: the scope of a socket opened only to be closed with its refusal. */
const NOBODY: Principal = Object.freeze({ tenant: null, allTenants: false, tables: new Set<string>(), exp: 0 });

/** Splits `Sec-WebSocket-Protocol` into the protocol to echo, the bearer token if offered, and whether refusals may be explained in-band. */
export function readProtocols(header: string): { echo: string; token: string | undefined; reasons: boolean } {
  let echo = '';
  let token: string | undefined;
  let reasons = false;
  for (const part of header.split(',')) {
    const p = part.trim();
    if (p === PROTOCOL) echo = PROTOCOL;
    else if (p === REASONS_PROTOCOL) reasons = true;
    else if (p.startsWith(BEARER_PREFIX)) token = p.slice(BEARER_PREFIX.length);
  }
  return { echo, token, reasons: reasons && echo === PROTOCOL };
}

export function createUpgradeHandler(o: UpgradeOptions) {
  return (req: HttpRequest): UpgradeDecision<SocketData> | Promise<UpgradeDecision<SocketData>> => {
    const origin = req.header('origin');
    const queryToken = req.query('token');
    const { echo, token, reasons } = readProtocols(req.header('sec-websocket-protocol'));
    const data = (principal: Principal, refused?: SocketData['refused']): SocketData =>
      ({ principal, subs: undefined, tokens: o.rateLimit, refilledAt: Date.now(), strikes: 0, dropped: 0, closed: false, drained: undefined, refused, stream: undefined });
    /**
     * A browser cannot read the status of a refused upgrade, so a client that offers `pgrelay.reasons` gets a socket that
     * the open handler closes at once with `code` and the reason (within the in-band budget); others get plain HTTP.
     */
    const refuse = (status: number, code: number, label: string, message: string): UpgradeDecision<SocketData> => {
      o.metrics.authFailures.inc({ reason: label });
      o.refusals.note({ reason: label, message, remote: req.remoteAddress, forwardedFor: req.header('x-forwarded-for'), origin });
      if (reasons && o.refusals.inBand()) return { accept: data(NOBODY, { code, reason: message }), protocol: echo };
      return { refuse: { status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: message } };
    };
    if (o.allowedOrigins && origin && !o.allowedOrigins.includes(origin)) {
      return refuse(403, CloseCode.OriginNotAllowed, 'origin', 'origin not allowed');
    }
    const accept = (principal: Principal): UpgradeDecision<SocketData> => ({ accept: data(principal), protocol: echo });
    const reject = (err: unknown): UpgradeDecision<SocketData> => {
      if (err instanceof AuthError) {
        // unreachable signing keys are the relay's trouble, not the token's: the client should come back later
        return refuse(401, err.reason === 'keys_unavailable' ? CloseCode.TryAgainLater : CloseCode.BadToken, err.reason, err.message);
      }
      o.log.error({ err }, 'token verification failed unexpectedly');
      return refuse(401, CloseCode.BadToken, 'malformed', 'token not accepted');
    };
    let result: Principal | Promise<Principal>;
    try {
      result = o.verifier.verify(token ?? (queryToken || undefined));
    } catch (err) {
      return reject(err);
    }
    // HS256 verifies synchronously: the upgrade completes inside the server's own handler (see docs/operations.md)
    return result instanceof Promise ? result.then(accept, reject) : accept(result);
  };
}
