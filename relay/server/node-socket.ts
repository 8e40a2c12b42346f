// One socket of the fallback server, and the topics it joins: per-socket sends with backpressure, cork, subscribe, end.
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { deflatedFrame } from './deflate-frame.js';
import type { SendResult, ServerSocket } from './server.js';
import { corked } from './node-http.js';
import { TopicMember, type Topics } from './topics.js';

const TEXT = { binary: false } as const;

/** One WebSocket of the fallback server (a `ws` WebSocket on its `net.Socket`). */
export class NodeSocket<D> extends TopicMember implements ServerSocket<D> {
  readonly data: D;
  readonly ws: WebSocket;
  readonly #socket: Duplex;
  readonly #hardLimit: number;
  /**
   * The client negotiated permessage-deflate: text frames go compressed, each deflated on its own and written here rather
   * than by ws, which would keep a zlib stream per socket and compress a published frame again for every socket.
   */
  readonly deflates: boolean;
  /** Last incoming traffic (messages, pings, pongs), for the idle timeout. */
  seenAt = Date.now();
  pinged = false;

  constructor(ws: WebSocket, socket: Duplex, data: D, hardLimit: number, topics: Topics<NodeSocket<D>>, onClose: (s: NodeSocket<D>) => void) {
    super(topics, onClose);
    this.ws = ws;
    this.#socket = socket;
    this.data = data;
    this.#hardLimit = hardLimit;
    this.deflates = ws.extensions.split(',').includes('permessage-deflate');
  }

  send(frame: string | Buffer): SendResult {
    if (this.closed || this.ws.bufferedAmount > this.#hardLimit) return 'dropped';
    if (this.deflates) return this.#write(deflatedFrame(frame));
    this.ws.send(frame, TEXT);
    return this.ws.bufferedAmount > 0 ? 'buffered' : 'sent';
  }

  /** A complete frame from {@link deflatedFrame} (a published one, deflated once for every socket). */
  sendDeflated(frame: Buffer): SendResult {
    if (this.closed || this.ws.bufferedAmount > this.#hardLimit) return 'dropped';
    return this.#write(frame);
  }

  #write(frame: Buffer): SendResult {
    // As ws.send: nothing goes out after the closing handshake began (the peer may have started it).
    if (this.ws.readyState !== this.ws.OPEN) return 'sent';
    // ws writes to the same socket only pings, pongs and the close frame (it never deflates here), so order is kept,
    // and ws.bufferedAmount counts these bytes too: backpressure works as for ws's own frames.
    this.#socket.write(frame);
    return this.ws.bufferedAmount > 0 ? 'buffered' : 'sent';
  }

  bufferedAmount(): number {
    return this.closed ? 0 : this.ws.bufferedAmount;
  }

  cork(fn: () => void): void {
    corked(this.#socket, fn);
  }

  end(code: number, reason: string): void {
    if (this.closed) return;
    // ws throws on a reason over 123 bytes: cut it, whole characters at a time
    while (Buffer.byteLength(reason) > 123) reason = reason.slice(0, -1);
    this.ws.close(code, reason);
    // as on uWS, the socket is closed for the relay at once; ws still completes the closing handshake
    this.closedNow();
  }
}
