// Refused upgrades: how many may be explained in-band (a socket opened only to close it with the reason), and the rate-limited log line.
import type { Logger } from '../ops/log.js';
import type { Transport } from './connections.js';
import { takeToken, type TokenBucket } from './token-bucket.js';

/** In-band refusals per second (and burst); past it a refusal is a plain HTTP 401/403, which costs less. */
export const IN_BAND_REFUSALS_PER_SECOND = 200;
/** At most one log line per refusal reason in this window; the line says how many refusals it stands for. */
export const REFUSAL_LOG_WINDOW_MS = 10_000;

/** Who was refused, for the log: never the token. */
export interface RefusalDetails {
  /** The refusal label (`bad_signature`, `expired`, `origin`…), as in pgrelay_auth_failures_total. */
  reason: string;
  /** The sentence the client gets. */
  message: string;
  remote: string;
  /**
   * `X-Forwarded-For` as the request carried it (`''`: none): behind a reverse proxy `remote` is the proxy, and this
   * names the client. Logged as given, never trusted for a decision: a client can send one of its own.
   */
  forwardedFor?: string;
  origin: string;
  /** What was refused: a WebSocket upgrade (`/ws`) or a Server-Sent Events request (`GET /sse`). Default `websocket`. */
  transport?: Transport;
}

const refusedWhat = { websocket: 'a WebSocket upgrade', sse: 'a Server-Sent Events request' } as const;

export class Refusals {
  readonly #log: Logger;
  readonly #rate: number;
  readonly #bucket: TokenBucket;
  /** transport and reason → when its last line was written and how many refusals came since. */
  readonly #lines = new Map<string, { at: number; count: number }>();

  constructor(log: Logger, perSecond = IN_BAND_REFUSALS_PER_SECOND) {
    this.#log = log;
    this.#rate = perSecond;
    this.#bucket = { tokens: perSecond, refilledAt: Date.now() };
  }

  /** True when this refusal may be explained in-band; false when the budget is spent (answer with plain HTTP). */
  inBand(): boolean {
    return takeToken(this.#bucket, this.#rate);
  }

  /** Logs a refusal at `info`: the first of each reason (per transport) at once, then at most one line per reason per window, with the count. */
  note(d: RefusalDetails): void {
    const now = Date.now();
    const transport = d.transport ?? 'websocket';
    const key = `${transport} ${d.reason}`;
    const line = this.#lines.get(key);
    if (line && now - line.at < REFUSAL_LOG_WINDOW_MS) {
      line.count++;
      return;
    }
    const refused = (line?.count ?? 0) + 1;
    this.#lines.set(key, { at: now, count: 0 });
    this.#log.info({ reason: d.reason, transport, remote: d.remote, forwardedFor: d.forwardedFor || undefined, origin: d.origin || undefined, refused }, `refused ${refusedWhat[transport]}: ${d.message}${refused > 1 ? ` (${refused} such refusals since the last line)` : ''}`);
  }
}
