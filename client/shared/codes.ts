// WebSocket close codes the relay uses, and whether a client should try again after each.

export const CloseCode = {
  /** The relay is shutting down (or restarting): reconnect, possibly to another relay. */
  GoingAway: 1001,
  /** An incoming message was larger than the relay accepts (RELAY_MAX_MESSAGE). */
  MessageTooBig: 1009,
  /** The token expired and no `auth` message brought a new one: reconnect with a fresh token. */
  TokenExpired: 4001,
  /** An `auth` message carried a token for another tenant (or other tables); a socket never changes tenant. */
  TenantMismatch: 4003,
  /** The socket fell too far behind (RELAY_MAX_BACKPRESSURE): reconnect and resume from the cursor; nothing is lost. */
  Backpressure: 4008,
  /** Too many malformed messages: a client bug, not retried. */
  ProtocolAbuse: 4009,
  /** Too many messages per second (RELAY_RATE_LIMIT): reconnect after a backoff. */
  RateLimited: 4029,
  /** The token was refused at connect (malformed, bad signature, expired, wrong audience, no tenant…); the close reason says why. Only to clients offering `pgrelay.reasons`. */
  BadToken: 4401,
  /** The page's `Origin` is not in RELAY_ALLOWED_ORIGINS. Only to clients offering `pgrelay.reasons`. */
  OriginNotAllowed: 4403,
  /** The relay cannot check tokens right now (its JWKS endpoint is unreachable): try again later. */
  TryAgainLater: 1013,
} as const;

export type CloseCodeName = keyof typeof CloseCode;

/** Close codes after which retrying cannot help: the client stops and reports why. */
export const fatalCloseCodes: ReadonlySet<number> = new Set([CloseCode.TenantMismatch, CloseCode.ProtocolAbuse, CloseCode.MessageTooBig, CloseCode.OriginNotAllowed]);
