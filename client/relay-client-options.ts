// What createRelayClient accepts: where the relay is, how to authenticate, and the knobs of reconnecting, each with its default.
import type { CursorStore } from './cursor-store.js';
import type { RelayError } from './relay-error.js';

/** The subset of the WebSocket API the client uses: the browser's `WebSocket` and the `ws` package's both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  // Events typed `any`: each implementation has its own event classes; the client reads only `data`, `code` and `reason`.
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** `ws` only: drop the TCP connection at once (a half-open socket never completes a closing handshake). */
  terminate?(): void;
}

export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;

/** A JWT, or a function returning one (called on every connect and again shortly before the current token's `exp`). */
export type TokenSource = string | (() => string | Promise<string>);

export interface RelayClientOptions {
  /** The relay's full WebSocket URL, e.g. `ws://localhost:8080/ws`. */
  url: string;
  /** Offered as the subprotocol `bearer.<jwt>` next to `pgrelay.v1`. A static token that expires ends the client (status `closed`, `lastError.code` `token_expired`). */
  token: TokenSource;
  /**
   * How to reach the relay: `'websocket'`; `'sse'` (Server-Sent Events over `fetch`, one HTTP stream per subscription); or
   * `'auto'`: a WebSocket, and SSE for the client's life once a WebSocket could not open (or died at once) twice in a row
   * while an HTTP check of the relay passed right after each (a relay that is down fails both). Default `'auto'`.
   */
  transport?: 'auto' | 'websocket' | 'sse';
  /** The relay's SSE URL, without a query. Default: `url` with `ws:` → `http:`, `wss:` → `https:` and a final `/ws` (with any query after it) → `/sse`. */
  sseUrl?: string;
  /** The WebSocket constructor. Default: `globalThis.WebSocket` (browsers, Node ≥ 22); on Node 20 pass `WebSocket` from the `ws` package. */
  WebSocket?: WebSocketConstructor;
  /** This client's `relay.origin` (what its own writes `SET LOCAL`): transactions with this origin arrive with `self: true`. Default: none. */
  origin?: string;
  /** Drop transactions whose origin is `origin` instead of delivering them (the cursor still advances). Default false. */
  skipSelf?: boolean;
  /** Persists cursors by subscription id so a reloaded page resumes. Default: none (cursors live in memory). */
  cursorStore?: CursorStore;
  /** Reconnect delays: full jitter up to min(maxMs, minMs · 2^attempt). Default `{ minMs: 500, maxMs: 30000 }`. */
  backoff?: { minMs?: number; maxMs?: number };
  /** After `idleMs` without any frame the client sends `ping`; if nothing arrives `timeoutMs` later it reconnects. Default `{ idleMs: 20000, timeoutMs: 15000 }`. */
  heartbeat?: { idleMs?: number; timeoutMs?: number };
  /** Told about every error that is not a subscription's (those go to its `onError`); the last one is also `client.lastError`. Default: none. */
  onError?: (error: RelayError) => void;
}
