// The one server interface the relay talks to: HTTP routes, a WebSocket endpoint whose upgrade is decided before the socket exists, per-socket sends with backpressure, topics, listen and close.

/** Which implementation serves: native uWebSockets.js, or the `ws` + `node:http` fallback. */
export type ServerImpl = 'uws' | 'ws';

/** What serves, and why: for the start-up log, `/healthz` and `pgrelay_server_info`. */
export interface ServerInfo {
  impl: ServerImpl;
  /** npm package serving WebSockets (`@btc-vision/uwebsockets.js`, `uWebSockets.js` or `ws`). */
  package: string;
  /** Its version. */
  version: string;
  /** The native `.node` file (uws only). */
  binary?: string;
  /** `forced` when RELAY_SERVER named it, `auto` when pgrelay chose it. */
  chosen: 'auto' | 'forced';
  /** Why the native server is not serving (the automatic fallback only): every build tried, and why it did not load. */
  fallbackReason?: string;
  /** Newer native builds tried first that did not load, with why (uws only; a detail, not a problem). */
  skipped: string[];
}

/** A request, its headers copied: valid after any await (uWS's own request object is not). */
export interface HttpRequest {
  /** Upper case (`GET`, `POST`). */
  readonly method: string;
  /** The path, without the query string. */
  readonly path: string;
  /** A header by its lower-case name; `''` when absent. */
  header(name: string): string;
  /** The first value of a query parameter (`+` is a space, `%xx` decoded), or undefined. */
  query(name: string): string | undefined;
  /** The peer's IP address as text. */
  readonly remoteAddress: string;
  /** The body of a route registered with `maxBody`: undefined when it was larger. Empty for other routes. */
  body(): Promise<Buffer | undefined>;
}

/** An HTTP answer. */
export interface HttpReply {
  status: number;
  headers?: Record<string, string>;
  /** Omitted: no body at all (a 304). */
  body?: string | Buffer;
}

/** Answers one request; the server writes the reply (unless the client went away meanwhile). */
export type HttpHandler = (req: HttpRequest) => HttpReply | Promise<HttpReply>;

/** How an upgrade ends: a socket carrying `data` (echoing `protocol`, `''` for none), or a plain HTTP answer and a closed connection. */
export type UpgradeDecision<D> = { accept: D; protocol: string } | { refuse: HttpReply };

/** What `send` did: written (or queued to the kernel), buffered behind a slow reader, or dropped above the hard limit. */
export type SendResult = 'sent' | 'buffered' | 'dropped';

/** One open WebSocket (or event stream: see {@link StreamBehavior}). Every method is a no-op (send: `dropped`) once it has closed. */
export interface ServerSocket<D> {
  /** What the upgrade decision attached. */
  readonly data: D;
  /** Sends one text frame. */
  send(frame: string): SendResult;
  /** Bytes waiting to be written to this socket. */
  bufferedAmount(): number;
  /** Runs `fn` with this socket's writes gathered into as few system calls as possible. */
  cork(fn: () => void): void;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /** Sends a close frame with `code` and `reason` (at most 123 bytes) and closes. */
  end(code: number, reason: string): void;
}

/** The WebSocket endpoint. */
export interface SocketBehavior<D> {
  /** Largest incoming message; above it the server closes the connection itself. */
  maxPayloadLength: number;
  /** Seconds without incoming traffic before a socket is closed; pings go out well before. */
  idleTimeout: number;
  /** Bytes buffered for one socket above which frames are dropped (never reached when `overflow` is set: see below). */
  maxBackpressure: number;
  /**
   * Bytes buffered above which a socket that a published frame reached is handed to `overflow`, right after that frame
   * and before the next (the relay closes it with 4008, and it leaves its topics). Must sit well below `maxBackpressure`.
   */
  overflowAt?: number;
  overflow?(ws: ServerSocket<D>): void;
  /**
   * Negotiate permessage-deflate with clients that offer it and send them every text frame compressed. Each frame is
   * compressed on its own (no context takeover), so sockets keep no compression state. Default false: never negotiated.
   */
  compression?: boolean;
  /** Decides before the socket exists; may be asynchronous (a JWKS lookup), the server handles an aborted request. */
  upgrade(req: HttpRequest): UpgradeDecision<D> | Promise<UpgradeDecision<D>>;
  open(ws: ServerSocket<D>): void;
  /** `message` is valid only during the call. */
  message(ws: ServerSocket<D>, message: Uint8Array, isBinary: boolean): void;
  /** The socket's buffer drained. */
  drain(ws: ServerSocket<D>): void;
  /** The socket closed, whoever closed it; its topics are already gone. */
  close(ws: ServerSocket<D>): void;
}

/** How a stream request ends: a stream carrying `data`, or a plain HTTP answer. */
export type StreamDecision<D> = { accept: D; headers?: Record<string, string> } | { refuse: HttpReply };

/**
 * The Server-Sent Events endpoint: `GET path` answered `200 text/event-stream` with a response that stays open. Each
 * stream is a {@link ServerSocket} (its `send` writes one event, `end` writes the closing event and ends the response),
 * so subscriptions, topics, backpressure and the overflow check work on it unchanged. It takes no messages.
 */
export interface StreamBehavior<D> {
  /** Seconds between heartbeat comments (`: ping`), which keep proxies from closing a quiet stream. */
  heartbeat: number;
  /** Bytes buffered above which `send` drops (never reached with `overflow`: see {@link SocketBehavior.overflowAt}). */
  maxBackpressure: number;
  overflowAt: number;
  overflow(s: ServerSocket<D>): void;
  /** Decides before the stream exists (may be asynchronous): `headers` go on the 200 answer. */
  accept(req: HttpRequest): StreamDecision<D> | Promise<StreamDecision<D>>;
  /** The text of the event carrying `frame`: for one stream (`data` given) or for every member of a topic. */
  event(frame: string, data?: D): string;
  /** The last text a stream ended with `code` and `reason` gets before its response ends (`''`: none). */
  closing(code: number, reason: string): string;
  open(s: ServerSocket<D>): void;
  /** Its buffer drained (the fallback says so; on uWS the writer polls). */
  drain(s: ServerSocket<D>): void;
  /** The stream ended, whoever ended it; its topics are already gone. */
  close(s: ServerSocket<D>): void;
}

/** Options of an HTTP route. */
export interface RouteOptions {
  /** Read the request body, up to this many bytes (`req.body()`). */
  maxBody?: number;
}

/** The server the relay runs on (relay/server/uws-server.ts, relay/server/node-server.ts). */
export interface RelayServer {
  readonly info: ServerInfo;
  /** Serves `method path` exactly (no patterns). */
  route(method: 'GET' | 'POST' | 'OPTIONS', path: string, handler: HttpHandler, options?: RouteOptions): void;
  /** Answers every request no route matches. */
  fallback(handler: HttpHandler): void;
  /** The WebSocket endpoint at `path` (one per server). */
  websocket<D>(path: string, behavior: SocketBehavior<D>): void;
  /** The Server-Sent Events endpoint at `path` (one per server): `GET path` streams, other methods go to the routes. */
  eventStream<D>(path: string, behavior: StreamBehavior<D>): void;
  /** Sends `frame` to every socket and stream subscribed to `topic`, serialized once (and once as an event). */
  publish(topic: string, frame: string): void;
  subscribers(topic: string): number;
  /**
   * Binds; resolves with the bound port (useful with port 0); rejects with a PgRelayError `port_unavailable` when
   * another socket holds the port. With `reusePort`, binds with SO_REUSEPORT, so that other processes that bind the same
   * way share the port (the kernel spreads connections over them); without it, nothing can share it.
   */
  listen(host: string, port: number, options?: { reusePort?: boolean }): Promise<number>;
  /** Stops accepting connections; open sockets stay until closed. */
  close(): void;
}
