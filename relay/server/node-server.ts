// The relay's server where no native uWebSockets.js build loads: `node:http` for HTTP and upgrades, `ws` for the sockets, topics kept here.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { deflatedFrame } from './deflate-frame.js';
import { BodyReader, internalError, MAX_HEADER_BYTES, portUnavailable, statusLine } from './http-request.js';
import { answer, corked, nodeRequest, notFound, splitUrl, writeReply } from './node-http.js';
import { EventStream, publishEvents, STREAM_HEADERS } from './event-stream.js';
import { NodeSocket } from './node-socket.js';
import { PgRelayError } from '../../client/shared/errors.js';
import { overflowCheck, Topics } from './topics.js';
import type { HttpHandler, HttpReply, HttpRequest, RelayServer, RouteOptions, ServerInfo, SocketBehavior, StreamBehavior, StreamDecision, UpgradeDecision } from './server.js';

/** Whether `listen` takes `reusePort` (SO_REUSEPORT: Node ≥ 22.12 and ≥ 23.1), which lets several relays share a port. */
export const nodeHasReusePort = (() => {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
})();

/** An HTTP answer written straight to an upgrade's socket, which then closes. */
function writeRaw(socket: Duplex, reply: HttpReply): void {
  if (socket.destroyed) return;
  const body = Buffer.from(reply.body ?? '');
  const head = [`HTTP/1.1 ${statusLine(reply.status)}`, 'connection: close', `content-length: ${body.length}`,
    ...Object.entries(reply.headers ?? {}).map(([name, value]) => `${name}: ${value}`), '', ''].join('\r\n');
  socket.once('finish', () => socket.destroy());
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
}

/** One event stream on a `node:http` response. */
class NodeStream<D> extends EventStream<D> {
  readonly #res: http.ServerResponse;

  constructor(res: http.ServerResponse, data: D, behavior: StreamBehavior<D>, topics: Topics<EventStream<any>>, onClose: (s: EventStream<D>) => void) {
    super(data, behavior, topics, onClose);
    this.#res = res;
  }

  protected write(text: string): boolean {
    return this.#res.write(text);
  }

  /** An ended stream's connection closes too: its client's next request is a new stream (EventSource opens one anyway). */
  protected finish(): void {
    // after any cork around this call is undone: Node 22 loses a write corked together with the response's end
    queueMicrotask(() => {
      const socket = this.#res.socket;
      this.#res.end(() => socket?.end());
    });
  }

  bufferedAmount(): number {
    return this.closed ? 0 : this.#res.writableLength;
  }

  cork(fn: () => void): void {
    corked(this.#res, fn);
  }
}

export class NodeServer implements RelayServer {
  readonly info: ServerInfo;
  readonly #http: http.Server;
  readonly #routes = new Map<string, { handler: HttpHandler; maxBody: number | undefined }>();
  readonly #topics = new Topics<NodeSocket<any>>();
  readonly #sockets = new Set<NodeSocket<any>>();
  #fallback: HttpHandler = () => notFound;
  #endpoint: { path: string; behavior: SocketBehavior<any>; wss: WebSocketServer } | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  readonly #streamTopics = new Topics<EventStream<any>>();
  readonly #streams = new Set<EventStream<any>>();
  #stream: { path: string; behavior: StreamBehavior<any> } | undefined;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(info: ServerInfo) {
    this.info = info;
    this.#http = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => this.#request(req, res));
    this.#http.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head));
  }

  route(method: 'GET' | 'POST' | 'OPTIONS', path: string, handler: HttpHandler, options: RouteOptions = {}): void {
    this.#routes.set(`${method} ${path}`, { handler, maxBody: options.maxBody });
  }

  fallback(handler: HttpHandler): void {
    this.#fallback = handler;
  }

  eventStream<D>(path: string, behavior: StreamBehavior<D>): void {
    this.#stream = { path, behavior };
  }

  #request(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.#stream && req.method === 'GET' && splitUrl(req.url)[0] === this.#stream.path) return this.#openStream(req, res, this.#stream.behavior);
    const route = this.#routes.get(`${req.method} ${splitUrl(req.url)[0]}`);
    let body: Promise<Buffer | undefined> | undefined;
    if (route?.maxBody !== undefined) {
      const reader = new BodyReader(route.maxBody);
      req.on('data', (chunk: Buffer) => reader.push(chunk, false));
      req.on('end', () => reader.push(Buffer.alloc(0), true));
      req.on('close', () => reader.abort());
      body = reader.done;
    } else {
      req.resume();
    }
    const handler = route?.handler ?? this.#fallback;
    const request = nodeRequest(req, body);
    answer(() => handler(request), (reply) => writeReply(res, reply), internalError);
  }

  #openStream<D>(req: http.IncomingMessage, res: http.ServerResponse, b: StreamBehavior<D>): void {
    req.resume();
    const request = nodeRequest(req);
    const start = (d: StreamDecision<D>) => {
      if ('refuse' in d) return writeReply(res, d.refuse);
      if (res.destroyed) return; // the client left during an asynchronous decision
      res.writeHead(200, { ...STREAM_HEADERS, ...d.headers });
      const s = new NodeStream(res, d.accept, b, this.#streamTopics, (closed) => {
        this.#streams.delete(closed);
        b.close(closed);
      });
      this.#streams.add(s);
      res.on('close', () => s.closedNow());
      res.on('drain', () => {
        if (!s.closed) b.drain(s);
      });
      s.cork(() => b.open(s));
    };
    answer(() => b.accept(request), start, { refuse: internalError });
  }

  websocket<D>(path: string, behavior: SocketBehavior<D>): void {
    // As uWS's shared compressor: no context kept on either side, so frames are compressed here, once (deflate-frame.ts),
    // and ws only negotiates and inflates what clients compress (browsers do).
    const perMessageDeflate = behavior.compression ? { serverNoContextTakeover: true, clientNoContextTakeover: true } : false;
    const wss = new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate, maxPayload: behavior.maxPayloadLength });
    this.#endpoint = { path, behavior, wss };
  }

  #upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    // a connection reset before the handshake completes must not end the process
    socket.on('error', () => socket.destroy());
    const endpoint = this.#endpoint;
    const request = nodeRequest(req);
    if (!endpoint || request.path !== endpoint.path) {
      return answer(() => this.#fallback(request), (reply) => writeRaw(socket, reply), internalError);
    }
    const finish = (d: UpgradeDecision<unknown>) => {
      if (socket.destroyed) return; // the client left during an asynchronous decision
      if ('refuse' in d) return writeRaw(socket, d.refuse);
      // The relay has read the offered protocols: ws sees only the one echoed, so its stricter parsing of the header
      // never refuses what the relay accepted (uWS leaves the header to the application).
      if (d.protocol) req.headers['sec-websocket-protocol'] = d.protocol;
      else delete req.headers['sec-websocket-protocol'];
      endpoint.wss.handleUpgrade(req, socket, head, (ws) => this.#open(ws, socket, d.accept, endpoint.behavior));
    };
    answer(() => endpoint.behavior.upgrade(request), finish, { refuse: internalError });
  }

  #open<D>(ws: WebSocket, socket: Duplex, data: D, b: SocketBehavior<D>): void {
    const s = new NodeSocket(ws, socket, data, b.maxBackpressure, this.#topics, (closed) => {
      this.#sockets.delete(closed);
      b.close(closed);
    });
    this.#sockets.add(s);
    const seen = () => {
      s.seenAt = Date.now();
      s.pinged = false;
    };
    ws.on('message', (message: Buffer, isBinary: boolean) => {
      seen();
      b.message(s, message, isBinary);
    });
    ws.on('ping', seen);
    ws.on('pong', seen);
    // a protocol error (bad UTF-8, a message over maxPayload) closes the socket; 'close' follows
    ws.on('error', () => undefined);
    ws.on('close', () => s.closedNow());
    socket.on('drain', () => {
      if (!s.closed) b.drain(s);
    });
    b.open(s);
  }

  /** Pings sockets idle for half the timeout and drops those idle for all of it (uWS's sendPingsAutomatically). */
  #sweep(timeoutMs: number): void {
    const now = Date.now();
    for (const s of this.#sockets) {
      const idle = now - s.seenAt;
      if (idle > timeoutMs) s.ws.terminate();
      else if (idle > timeoutMs / 2 && !s.pinged) {
        s.pinged = true;
        s.ws.ping();
      }
    }
  }

  publish(topic: string, frame: string): void {
    publishEvents(this.#streamTopics, topic, frame, this.#stream?.behavior);
    const members = this.#topics.members(topic);
    if (!members) return;
    // serialized once: every socket writes the same bytes (ws frames a Buffer without copying it)
    const data = Buffer.from(frame);
    // and compressed at most once: a frame deflated on its own is valid on every socket that negotiated compression
    let deflated: Buffer | undefined;
    for (const s of members) {
      // Never skip a frame on a socket that stays open: one over the hard limit is dropped, and its client resumes from
      // its cursor. (With `overflow` set it is handed over well before this.)
      if ((s.deflates ? s.sendDeflated((deflated ??= deflatedFrame(data))) : s.send(data)) === 'dropped') s.ws.terminate();
    }
    overflowCheck(this.#topics, topic, this.#endpoint?.behavior);
  }

  subscribers(topic: string): number {
    return (this.#topics.members(topic)?.size ?? 0) + (this.#streamTopics.members(topic)?.size ?? 0);
  }

  listen(host: string, port: number, options: { reusePort?: boolean } = {}): Promise<number> {
    if (options.reusePort && !nodeHasReusePort) {
      return Promise.reject(new PgRelayError('reuseport_unavailable', `RELAY_REUSEPORT is on, but the ws fallback can share a port only from Node 22.12 (this is Node ${process.versions.node}); run the native server (docs/operations.md, "Native WebSocket server"), a newer Node, or each relay on a port of its own behind a load balancer.`));
    }
    return new Promise((resolve, reject) => {
      const failed = (err: NodeJS.ErrnoException) => {
        reject(['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL'].includes(err.code ?? '') ? portUnavailable(host, port) : err);
      };
      this.#http.once('error', failed);
      this.#http.listen({ host, port, ...(options.reusePort ? { reusePort: true } : {}) } as import('node:net').ListenOptions, () => {
        this.#http.off('error', failed);
        const timeout = this.#endpoint?.behavior.idleTimeout;
        if (timeout) {
          this.#sweeper = setInterval(() => this.#sweep(timeout * 1000), Math.min(4000, (timeout * 1000) / 4));
          this.#sweeper.unref();
        }
        const beat = this.#stream?.behavior.heartbeat;
        if (beat) {
          this.#heartbeat = setInterval(() => {
            for (const s of this.#streams) s.heartbeat();
          }, beat * 1000);
          this.#heartbeat.unref();
        }
        resolve((this.#http.address() as AddressInfo).port);
      });
    });
  }

  close(): void {
    clearInterval(this.#sweeper);
    clearInterval(this.#heartbeat);
    this.#http.close();
    this.#http.closeIdleConnections();
  }
}
