// The WebSocket upgrade: token and origin checked before the socket exists; async checks follow the uWS order (copy, onAborted, await, check, cork+upgrade).
import { BEARER_PREFIX, PROTOCOL } from '../client/protocol.js';
import { AuthError, type Principal, type TokenVerifier } from './auth.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { SocketData } from './socket-data.js';
import type { UWS } from './uws.js';

export interface UpgradeOptions {
  verifier: TokenVerifier;
  allowedOrigins: readonly string[] | undefined;
  rateLimit: number;
  metrics: Metrics;
  log: Logger;
}

/** Splits `Sec-WebSocket-Protocol` into the protocol to echo and the bearer token, if offered. */
export function readProtocols(header: string): { echo: string; token: string | undefined } {
  let echo = '';
  let token: string | undefined;
  for (const part of header.split(',')) {
    const p = part.trim();
    if (p === PROTOCOL) echo = PROTOCOL;
    else if (p.startsWith(BEARER_PREFIX)) token = p.slice(BEARER_PREFIX.length);
  }
  return { echo, token };
}

export function createUpgradeHandler(o: UpgradeOptions) {
  return (res: UWS.HttpResponse, req: UWS.HttpRequest, context: UWS.us_socket_context_t): void => {
    // Copy everything from req now: it is invalid after the first await.
    const key = req.getHeader('sec-websocket-key');
    const protocolHeader = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const origin = req.getHeader('origin');
    const queryToken = req.getQuery('token');
    let aborted = false;
    const refuse = (status: string, reason: string, label?: string) => {
      if (label) o.metrics.authFailures.inc({ reason: label });
      res.cork(() => {
        // close the connection too: a refused client has no business keeping it
        res.writeStatus(status).writeHeader('content-type', 'text/plain; charset=utf-8').end(reason, true);
      });
    };
    if (o.allowedOrigins && origin && !o.allowedOrigins.includes(origin)) {
      o.metrics.authFailures.inc({ reason: 'origin' });
      refuse('403 Forbidden', 'origin not allowed');
      return;
    }
    const { echo, token } = readProtocols(protocolHeader);
    const accept = (principal: Principal) => {
      const data: SocketData = { principal, subs: undefined, tokens: o.rateLimit, refilledAt: Date.now(), strikes: 0, dropped: 0, closed: false, drained: undefined };
      res.upgrade(data, key, echo, extensions, context);
    };
    const reject = (err: unknown) => {
      if (err instanceof AuthError) return refuse('401 Unauthorized', err.message, err.reason);
      o.log.error({ err }, 'token verification failed unexpectedly');
      refuse('401 Unauthorized', 'token not accepted', 'malformed');
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
