// The WebSocket upgrade: token and origin checked before the socket exists; async checks follow the uWS order (copy, onAborted, await, check, cork+upgrade).
import { CloseCode } from '../client/codes.js';
import { BEARER_PREFIX, PROTOCOL, REASONS_PROTOCOL } from '../client/protocol.js';
import { AuthError, type Principal, type TokenVerifier } from './auth.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { Refusals } from './refusals.js';
import type { SocketData } from './socket-data.js';
import type { UWS } from './uws.js';

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
  return (res: UWS.HttpResponse, req: UWS.HttpRequest, context: UWS.us_socket_context_t): void => {
    // Copy everything from req now: it is invalid after the first await.
    const key = req.getHeader('sec-websocket-key');
    const protocolHeader = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const origin = req.getHeader('origin');
    const queryToken = req.getQuery('token');
    const remote = Buffer.from(res.getRemoteAddressAsText()).toString();
    let aborted = false;
    const { echo, token, reasons } = readProtocols(protocolHeader);
    const data = (principal: Principal, refused?: SocketData['refused']): SocketData =>
      ({ principal, subs: undefined, tokens: o.rateLimit, refilledAt: Date.now(), strikes: 0, dropped: 0, closed: false, drained: undefined, refused });
    /**
     * A browser cannot read the status of a refused upgrade, so a client that offers `pgrelay.reasons` gets a socket that
     * the open handler closes at once with `code` and the reason (within the in-band budget); others get plain HTTP.
     */
    const refuse = (status: string, code: number, label: string, message: string) => {
      o.metrics.authFailures.inc({ reason: label });
      o.refusals.note({ reason: label, message, remote, origin });
      res.cork(() => {
        if (reasons && o.refusals.inBand()) return void res.upgrade(data(NOBODY, { code, reason: message }), key, echo, extensions, context);
        // close the connection too: a refused client has no business keeping it
        res.writeStatus(status).writeHeader('content-type', 'text/plain; charset=utf-8').end(message, true);
      });
    };
    if (o.allowedOrigins && origin && !o.allowedOrigins.includes(origin)) {
      refuse('403 Forbidden', CloseCode.OriginNotAllowed, 'origin', 'origin not allowed');
      return;
    }
    const accept = (principal: Principal) => {
      res.upgrade(data(principal), key, echo, extensions, context);
    };
    const reject = (err: unknown) => {
      if (err instanceof AuthError) {
        // unreachable signing keys are the relay's trouble, not the token's: the client should come back later
        return refuse('401 Unauthorized', err.reason === 'keys_unavailable' ? CloseCode.TryAgainLater : CloseCode.BadToken, err.reason, err.message);
      }
      o.log.error({ err }, 'token verification failed unexpectedly');
      refuse('401 Unauthorized', CloseCode.BadToken, 'malformed', 'token not accepted');
    };
    let result: Principal | Promise<Principal>;
    try {
      result = o.verifier.verify(token ?? (queryToken || undefined));
    } catch (err) {
      return reject(err);
    }
    if (!(result instanceof Promise)) {
      // Synchronous (HS256): still inside uWS's handler, which is corked for us.
      accept(result);
      return;
    }
    // Asynchronous (JWKS): req is dead after the await; watch for the client leaving meanwhile.
    res.onAborted(() => {
      aborted = true;
    });
    result.then(
      (principal) => {
        if (!aborted) res.cork(() => accept(principal));
      },
      (err: unknown) => {
        if (!aborted) reject(err);
      },
    );
  };
}
