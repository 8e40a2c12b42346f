// The relay's server on native uWebSockets.js: handlers in the documented order (copy, onAborted, await, check aborted, cork + write/upgrade).
import { BodyReader, copiedRequest, internalError, portUnavailable, statusLine } from './http-request.js';
import { EventStream, publishEvents, STREAM_HEADERS } from './event-stream.js';
import type { HttpHandler, HttpReply, HttpRequest, RelayServer, RouteOptions, ServerInfo, SocketBehavior, StreamBehavior, StreamDecision, UpgradeDecision } from './server.js';
import { overflowCheck, Topics } from './topics.js';
import type { UWS } from './uws-native.js';
import { needsLargeSendGuard, SOCKET, socketOf, UwsSocket } from './uws-socket.js';

/** Writes a reply; inside a uWS handler, or inside `res.cork` after an await. */
function write(res: UWS.HttpResponse, reply: HttpReply, closeConnection = false): void {
  res.writeStatus(statusLine(reply.status));
  for (const [name, value] of Object.entries(reply.headers ?? {})) res.writeHeader(name, value);
  if (reply.body !== undefined) res.end(reply.body, closeConnection);
  else if (closeConnection) res.endWithoutBody(0, true);
  else res.endWithoutBody();
}

/** The request with everything copied now: `req` is invalid after the handler returns. */
function copy(res: UWS.HttpResponse, req: UWS.HttpRequest, body?: Promise<Buffer | undefined>): HttpRequest {
  const headers = new Map<string, string>();
  // the first of a repeated header, as req.getHeader reads it
  req.forEach((name, value) => {
    if (!headers.has(name)) headers.set(name, value);
  });
  return copiedRequest(req.getMethod().toUpperCase(), req.getUrl(), req.getQuery() ?? '', headers, Buffer.from(res.getRemoteAddressAsText()).toString(), body);
}

/**
 * One event stream on a uWS response. uWS does not say how much a response has buffered: a write that did not all go
 * out starts a count of what was written since, and the count clears when a write goes out whole (the next event, a
 * heartbeat, or the 2-byte comment `bufferedAmount` writes to find out). uWS drains the buffer by itself.
 */
class UwsStream<D> extends EventStream<D> {
  readonly #res: UWS.HttpResponse;
  #pending = 0;

  constructor(res: UWS.HttpResponse, data: D, behavior: StreamBehavior<D>, topics: Topics<EventStream<any>>, onClose: (s: EventStream<D>) => void) {
    super(data, behavior, topics, onClose);
    this.#res = res;
  }

  protected write(text: string): boolean {
    const whole = this.#res.write(text);
    this.#pending = whole ? 0 : this.#pending + Buffer.byteLength(text);
    return whole;
  }

  /**
   * Ends the chunked response with its terminating chunk. Not `end('', true)`: uWebSockets.js 20.30 then writes a
   * `Connection: close` header line into the body after the last chunk, which nginx refuses ("upstream sent invalid
   * chunked response": a 502 for every token check; found by relay/__tests__/proxy.nginx.test.ts). The connection
   * stays open for the client to reuse or close (a token check's answer says `connection: close`, see relay/edge/sse.ts);
   * uWS drops it after 10 s idle.
   */
  protected finish(): void {
    this.#res.cork(() => this.#res.end());
  }

  bufferedAmount(): number {
    if (this.closed) return 0;
    if (this.#pending > 0) this.cork(() => this.write(':\n'));
    return this.#pending;
  }

  cork(fn: () => void): void {
    if (this.closed) fn();
    else this.#res.cork(fn);
  }
}

export class UwsServer implements RelayServer {
  readonly info: ServerInfo;
  readonly #uws: typeof UWS;
  readonly #app: UWS.TemplatedApp;
  #fallback: HttpHandler | undefined;
  #listening: UWS.us_listen_socket | undefined;
  /** Who is in each topic: uWS does not say, and the overflow check after each frame needs it. */
  readonly #topics = new Topics<UwsSocket<any>>();
  #behavior: SocketBehavior<any> | undefined;
  /** Event streams per topic, and every open one (for the heartbeat). */
  readonly #streamTopics = new Topics<EventStream<any>>();
  readonly #streams = new Set<EventStream<any>>();
  #streamBehavior: StreamBehavior<any> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  /** The `compress` flag of every send: uWS compresses for sockets that negotiated it and ignores it for the others. */
  #compress = false;
  /** This build loses large frames to sockets in no topic (see {@link needsLargeSendGuard}). */
  readonly #largeSendGuard: boolean;

  constructor(uws: typeof UWS, info: ServerInfo) {
    this.#uws = uws;
    this.info = info;
    this.#largeSendGuard = needsLargeSendGuard(info.version);
    this.#app = uws.App();
  }

  route(method: 'GET' | 'POST' | 'OPTIONS', path: string, handler: HttpHandler, options: RouteOptions = {}): void {
    const serve = (res: UWS.HttpResponse, req: UWS.HttpRequest) => this.#serve(res, req, handler, options.maxBody);
    if (method === 'GET') this.#app.get(path, serve);
    else if (method === 'POST') this.#app.post(path, serve);
    else this.#app.options(path, serve);
  }

  eventStream<D>(path: string, b: StreamBehavior<D>): void {
    this.#streamBehavior = b;
    this.#app.get(path, (res, req) => {
      const request = copy(res, req);
      let aborted = false;
      let stream: UwsStream<D> | undefined;
      res.onAborted(() => {
        aborted = true;
        stream?.closedNow();
      });
      const start = (d: StreamDecision<D>) => {
        if (aborted) return;
        res.cork(() => {
          if ('refuse' in d) return write(res, d.refuse);
          res.writeStatus('200 OK');
          for (const [name, value] of Object.entries({ ...STREAM_HEADERS, ...d.headers })) res.writeHeader(name, value);
          const s = (stream = new UwsStream(res, d.accept, b, this.#streamTopics, (closed) => {
            this.#streams.delete(closed);
            b.close(closed);
          }));
          this.#streams.add(s);
          b.open(s);
        });
      };
      let out: StreamDecision<D> | Promise<StreamDecision<D>>;
      try {
        out = b.accept(request);
      } catch {
        out = { refuse: internalError };
      }
      if (out instanceof Promise) out.then(start, () => start({ refuse: internalError }));
      else start(out);
    });
  }

  fallback(handler: HttpHandler): void {
    this.#fallback = handler;
  }

  #serve(res: UWS.HttpResponse, req: UWS.HttpRequest, handler: HttpHandler, maxBody: number | undefined): void {
    let aborted = false;
    let reader: BodyReader | undefined;
    if (maxBody !== undefined) {
      reader = new BodyReader(maxBody);
      res.onData((chunk, isLast) => reader!.push(new Uint8Array(chunk), isLast));
    }
    const request = copy(res, req, reader?.done);
    let out: HttpReply | Promise<HttpReply>;
    try {
      out = handler(request);
    } catch {
      out = internalError;
    }
    if (!(out instanceof Promise)) return write(res, out);
    res.onAborted(() => {
      aborted = true;
      reader?.abort();
    });
    out.then(
      (reply) => {
        if (!aborted) res.cork(() => write(res, reply));
      },
      () => {
        if (!aborted) res.cork(() => write(res, internalError));
      },
    );
  }

  websocket<D>(path: string, b: SocketBehavior<D>): void {
    this.#behavior = b;
    this.#compress = b.compression === true;
    this.#app.ws<D>(path, {
      // One deflate stream for the whole loop, reset for every frame (no context takeover either way, and inflation of
      // client messages shared too): no memory per socket. uWS still compresses once per socket a frame goes to.
      compression: this.#compress ? this.#uws.SHARED_COMPRESSOR : this.#uws.DISABLED,
      maxPayloadLength: b.maxPayloadLength,
      idleTimeout: b.idleTimeout,
      sendPingsAutomatically: true,
      maxBackpressure: b.maxBackpressure,
      closeOnBackpressureLimit: 1, // a boolean in uWS, typed as a number in its declarations
      upgrade: (res, req, context) => {
        const key = req.getHeader('sec-websocket-key');
        const extensions = req.getHeader('sec-websocket-extensions');
        const request = copy(res, req);
        let aborted = false;
        const finish = (d: UpgradeDecision<D>, corked: boolean) => {
          // a refused client has no business keeping the connection
          if ('refuse' in d) return void res.cork(() => write(res, d.refuse, true));
          if (corked) res.upgrade(d.accept, key, d.protocol, extensions, context);
          else res.cork(() => res.upgrade(d.accept, key, d.protocol, extensions, context));
        };
        let out: UpgradeDecision<D> | Promise<UpgradeDecision<D>>;
        try {
          out = b.upgrade(request);
        } catch {
          out = { refuse: internalError };
        }
        // Synchronous (HS256): still inside uWS's handler, which is corked for us.
        if (!(out instanceof Promise)) return finish(out, true);
        res.onAborted(() => {
          aborted = true;
        });
        out.then(
          (d) => {
            if (!aborted) finish(d, false);
          },
          () => {
            if (!aborted) finish({ refuse: internalError }, false);
          },
        );
      },
      open: (ws) => {
        const socket = new UwsSocket(ws, this.#topics, { compress: this.#compress, largeSendGuard: this.#largeSendGuard });
        (ws.getUserData() as { [SOCKET]: UwsSocket<D> })[SOCKET] = socket;
        b.open(socket);
      },
      message: (ws, message, isBinary) => b.message(socketOf(ws), new Uint8Array(message), isBinary),
      drain: (ws) => b.drain(socketOf(ws)),
      close: (ws) => {
        const socket = socketOf(ws);
        socket.closedNow();
        b.close(socket);
      },
    });
  }

  publish(topic: string, frame: string): void {
    this.#app.publish(topic, frame, false, this.#compress);
    overflowCheck(this.#topics, topic, this.#behavior);
    publishEvents(this.#streamTopics, topic, frame, this.#streamBehavior);
  }

  subscribers(topic: string): number {
    return this.#app.numSubscribers(topic) + (this.#streamTopics.members(topic)?.size ?? 0);
  }

  listen(host: string, port: number, options: { reusePort?: boolean } = {}): Promise<number> {
    // the catch-all goes in after every route
    const fallback = this.#fallback;
    if (fallback) this.#app.any('/*', (res, req) => this.#serve(res, req, fallback, undefined));
    // uSockets binds with SO_REUSEPORT unless told LIBUS_LISTEN_EXCLUSIVE_PORT (1): a second relay would share the port silently
    const exclusive = options.reusePort ? 0 : 1;
    return new Promise((resolve, reject) => {
      // (host, port, options, cb): the native binding takes it, though the typings list options only without a host
      const listen = this.#app.listen.bind(this.#app) as unknown as (h: string, p: number, o: number, cb: (s: UWS.us_listen_socket | false) => void) => void;
      listen(host, port, exclusive, (socket) => {
        if (!socket) return reject(portUnavailable(host, port));
        this.#listening = socket;
        const beat = this.#streamBehavior?.heartbeat;
        if (beat) {
          this.#heartbeat = setInterval(() => {
            for (const s of this.#streams) s.heartbeat();
          }, beat * 1000);
          this.#heartbeat.unref();
        }
        resolve(this.#uws.us_socket_local_port(socket as unknown as UWS.us_socket));
      });
    });
  }

  close(): void {
    clearInterval(this.#heartbeat);
    if (this.#listening) this.#uws.us_listen_socket_close(this.#listening);
    this.#listening = undefined;
  }
}
