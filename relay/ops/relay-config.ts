// The relay's settings as the rest of it reads them, each field naming its variable and default (loaded by ops/config.ts).
/** The relay's settings. Every field names its variable and default. */
export interface RelayConfig {
  /** `DATABASE_URL`: the database to relay. Default: none, `pgrelay start` then runs an embedded Postgres. Must be a direct connection (LISTEN does not work through a transaction-mode pooler). */
  readonly databaseUrl: string | undefined;
  /** `PORT`: HTTP and WebSocket port. Default 8080; 0 picks a free port. */
  readonly port: number;
  /** `HOST`: interface to listen on. Default `0.0.0.0`; `127.0.0.1` without `DATABASE_URL` (the embedded development mode hands out dev tokens). */
  readonly host: string;
  /**
   * `METRICS_PORT`: serve `/metrics` (with `/healthz` and `/readyz`) on a listener of its own, on `METRICS_HOST`, and not
   * on `PORT`. Default: none (`/metrics` is on `PORT`, see `metricsToken`); 0 picks a free port.
   */
  readonly metricsPort: number | undefined;
  /** `METRICS_HOST`: interface of the `METRICS_PORT` listener. Default `127.0.0.1`: only this machine (and a Prometheus agent on it) reaches it. */
  readonly metricsHost: string;
  /**
   * `RELAY_METRICS_TOKEN`: `/metrics` answers only requests carrying `Authorization: Bearer <token>` (Prometheus's
   * `authorization` setting sends it), on whichever port serves it. Default: none; then `/metrics` on `PORT` answers only
   * while `HOST` is a loopback address (a relay other machines can reach needs this token or `METRICS_PORT`).
   */
  readonly metricsToken: string | undefined;
  /** `RELAY_JWT_SECRET`: HS256 secret for client tokens (at least 32 bytes, and not an example pgrelay's files print). Default: none (one of it or `RELAY_JWKS_URL` is required, except with the embedded database, which generates a dev secret). */
  readonly jwtSecret: string | undefined;
  /** `RELAY_JWKS_URL`: JWKS endpoint for asymmetric tokens (RS256, ES256, EdDSA…). Default: none. */
  readonly jwksUrl: string | undefined;
  /** `RELAY_JWT_AUDIENCE`: required `aud`, when set. Default: not checked. */
  readonly jwtAudience: string | undefined;
  /** `RELAY_JWT_ISSUER`: required `iss`, when set. Default: not checked. */
  readonly jwtIssuer: string | undefined;
  /** `RELAY_TENANT_CLAIM`: the claim holding the tenant id. Default `tenant_id`. */
  readonly tenantClaim: string;
  /** `RELAY_ROLE_CLAIM`: the claim holding the role that picks a table's access rule (relay.allow). Default `role`. */
  readonly roleClaim: string;
  /** `RELAY_PRESENCE_CLAIM`: the claim holding the display name other members of the tenant see next to a member's `sub` in presence. Default `name`. */
  readonly presenceClaim: string;
  /** `RELAY_PRESENCE_TTL_MS`: how long a relay's presence entries live without a refresh (it refreshes every third of it); the members of a relay that stops without closing leave within 4/3 of it. Default 15000. */
  readonly presenceTtlMs: number;
  /** `RELAY_ALLOWED_ORIGINS`: comma-separated `Origin` values allowed to open a socket. Default: any origin. */
  readonly allowedOrigins: readonly string[] | undefined;
  /** `RELAY_HISTORY_TX`: transactions kept in the in-memory ring for fast resume. Default 20000. */
  readonly historyTx: number;
  /** `RELAY_HISTORY_BYTES`: bytes the ring may hold. Default 64 MiB. */
  readonly historyBytes: number;
  /** `RELAY_RETENTION`: how long `relay.changes` keeps history (a Postgres interval). Default `7 days`. */
  readonly retention: string;
  /** `RELAY_PRUNE_INTERVAL_MS`: how often one relay prunes history. Default 1 hour. */
  readonly pruneIntervalMs: number;
  /** `RELAY_MAX_BACKPRESSURE`: bytes buffered for one socket before it is closed with 4008 (it resumes from its cursor). Default 4 MiB. */
  readonly maxBackpressure: number;
  /** `RELAY_MAX_SUBSCRIPTIONS`: subscriptions per socket. Default 100. */
  readonly maxSubscriptions: number;
  /** `RELAY_MAX_FRAME`: bytes of one outgoing `tx` or `snapshot` frame; larger transactions are split. Default 256 KiB. */
  readonly maxFrame: number;
  /** `RELAY_MAX_MESSAGE`: bytes of one incoming client message; larger ones close the socket (1009). Default 16 KiB. */
  readonly maxMessage: number;
  /** `RELAY_RATE_LIMIT`: client messages per second per socket (burst of the same size). Default 50. */
  readonly rateLimit: number;
  /** `RELAY_IDLE_TIMEOUT`: seconds without traffic before a socket is considered dead; pings go out before. Default 60. */
  readonly idleTimeout: number;
  /** `RELAY_SERVER`: `uws` (native uWebSockets.js), `ws` (the `ws` + `node:http` fallback) or `auto` (uws where a native build loads, else ws). Default `auto`. */
  readonly server: 'auto' | 'uws' | 'ws';
  /**
   * `RELAY_COMPRESSION`: `on` compresses every frame (permessage-deflate) for clients that offer it (browsers do), with no
   * context kept between frames, so no compression state per socket; `off` never negotiates it. Default `off`.
   */
  readonly compression: 'off' | 'on';
  /**
   * `RELAY_REUSEPORT`: `on` lets several relay processes listen on the same host and port (SO_REUSEPORT: the kernel
   * spreads connections over them, one process a core); every one of them must set it. `off` makes a port another
   * process holds an error, so a second `npm start` left running by mistake cannot silently take half the clients. Default `off`.
   */
  readonly reusePort: boolean;
  /** `RELAY_DATA_DIR`: where `npm start` keeps the embedded database and dev secret. Default `./.pgrelay`. */
  readonly dataDir: string;
  /** `LOG_LEVEL`: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`. Default `info`. */
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** `LOG_FORMAT`: `pretty` (readable lines), `json` (JSON lines) or `auto` (pretty when stdout is a terminal). Default `auto`. */
  readonly logFormat: 'auto' | 'pretty' | 'json';
}
