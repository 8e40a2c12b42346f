// The relay's server on native uWebSockets.js: handlers in the documented order (copy, onAborted, await, check aborted, cork + write/upgrade).
import { BodyReader, copiedRequest, internalError, portUnavailable, statusLine } from './http-request.js';
import type { HttpHandler, HttpReply, HttpRequest, RelayServer, RouteOptions, ServerInfo, SocketBehavior, UpgradeDecision } from './server.js';
import { overflowCheck, Topics } from './topics.js';
import type { UWS } from './uws-native.js';
import { SOCKET, socketOf, UwsSocket } from './uws-socket.js';

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

export class UwsServer implements RelayServer {
  readonly info: ServerInfo;
  readonly #uws: typeof UWS;
  readonly #app: UWS.TemplatedApp;
  #fallback: HttpHandler | undefined;
  #listening: UWS.us_listen_socket | undefined;
  /** Who is in each topic: uWS does not say, and the overflow check after each frame needs it. */
  readonly #topics = new Topics<UwsSocket<any>>();
  #behavior: SocketBehavior<any> | undefined;
  /** The `compress` flag of every send: uWS compresses for sockets that negotiated it and ignores it for the others. */
  #compress = false;

  constructor(uws: typeof UWS, info: ServerInfo) {
    this.#uws = uws;
    this.info = info;
    this.#app = uws.App();
  }

  route(method: 'GET' | 'POST', path: string, handler: HttpHandler, options: RouteOptions = {}): void {
    const serve = (res: UWS.HttpResponse, req: UWS.HttpRequest) => this.#serve(res, req, handler, options.maxBody);
    if (method === 'GET') this.#app.get(path, serve);
    else this.#app.post(path, serve);
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
        const socket = new UwsSocket(ws, this.#topics, this.#compress);
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
  }

  subscribers(topic: string): number {
    return this.#app.numSubscribers(topic);
  }

  listen(host: string, port: number): Promise<number> {
    // the catch-all goes in after every route
    const fallback = this.#fallback;
    if (fallback) this.#app.any('/*', (res, req) => this.#serve(res, req, fallback, undefined));
    return new Promise((resolve, reject) => {
      this.#app.listen(host, port, (socket) => {
        if (!socket) return reject(portUnavailable(host, port));
        this.#listening = socket;
        resolve(this.#uws.us_socket_local_port(socket as unknown as UWS.us_socket));
      });
    });
  }

  close(): void {
    if (this.#listening) this.#uws.us_listen_socket_close(this.#listening);
    this.#listening = undefined;
  }
}
