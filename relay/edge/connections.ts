// The relay's open sockets and event streams: the welcome, the close, the drain, and the sweep for expired tokens and slow sockets.
import { CloseCode } from '../../client/shared/codes.js';
import type { ChangeFeed } from '../feed/change-feed.js';
import type { Metrics } from '../ops/metrics.js';
import type { Presence } from '../presence/presence.js';
import type { RelaySocket as WS } from '../routing/socket-data.js';
import type { SocketWriter } from '../routing/socket-writer.js';
import type { Subscriptions } from '../routing/subscriptions.js';

/** How a client is connected: a WebSocket (`/ws`) or an event stream (`GET /sse`). */
export type Transport = 'websocket' | 'sse';

/** What {@link Connections} needs from the relay. */
export interface ConnectionsOptions {
  /** The position a welcome names. */
  feed: Pick<ChangeFeed, 'position'>;
  subscriptions: Pick<Subscriptions, 'closed'>;
  presence: Pick<Presence, 'closed'>;
  io: SocketWriter;
  metrics: Metrics;
  /** `RELAY_MAX_BACKPRESSURE`: a socket with more than this many bytes buffered is closed with 4008. */
  maxBackpressure: number;
}

export class Connections {
  readonly #o: ConnectionsOptions;
  readonly #sockets = new Set<WS>();

  constructor(options: ConnectionsOptions) {
    this.#o = options;
  }

  /** The open sockets and streams. */
  get sockets(): ReadonlySet<WS> {
    return this.#sockets;
  }

  /** A socket or stream opened: it is counted and welcomed with its tenant and the relay's position. */
  opened(ws: WS, transport: Transport): void {
    this.#sockets.add(ws);
    this.#o.metrics.connections.inc({ transport });
    ws.send(JSON.stringify({ type: 'welcome', tenant: ws.data.principal.tenant, seq: this.#o.feed.position }));
  }

  /** The server says the socket's send buffer drained: the writer waiting for it goes on. */
  drain(ws: WS): void {
    const d = ws.data;
    const waiter = d.drained;
    d.drained = undefined;
    waiter?.();
  }

  /** A socket or stream is gone, whoever ended it: its subscriptions end and any writer waiting for it stops waiting. */
  closed(ws: WS, transport: Transport): void {
    const d = ws.data;
    d.closed = true;
    this.#sockets.delete(ws);
    this.#o.metrics.connections.dec({ transport });
    this.#o.subscriptions.closed(ws);
    this.#o.presence.closed(ws);
    d.drained?.();
  }

  /**
   * One pass over the sockets: expired tokens (4001) and slow sockets (4008; every published frame is checked at once,
   * this catches the rest) are closed.
   */
  sweep(): void {
    const nowSec = Date.now() / 1000;
    for (const ws of this.#sockets) {
      const d = ws.data;
      if (d.closed) continue;
      if (ws.bufferedAmount() > this.#o.maxBackpressure) this.#o.io.overflow(ws);
      else if (d.principal.exp !== undefined && d.principal.exp <= nowSec) this.#o.io.end(ws, CloseCode.TokenExpired, 'token expired');
    }
  }

  /** Closes every socket and stream with 1001: the relay is shutting down. */
  endAll(): void {
    for (const ws of [...this.#sockets]) this.#o.io.end(ws, CloseCode.GoingAway, 'relay shutting down');
  }
}
