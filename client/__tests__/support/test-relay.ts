// A real WebSocket server on 127.0.0.1 that plays the relay's side of the protocol with frames each test scripts.
import type { IncomingMessage } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import type { ClientMessage, ServerMessage } from '../../shared/protocol.js';
import { PROTOCOL } from '../../shared/protocol.js';
import { changes } from '../../../db/testing/index.js';

export interface RelayConnection {
  ws: WebSocket;
  /** What the client offered in Sec-WebSocket-Protocol. */
  offered: string[];
  /** What the server echoed. */
  protocol: string;
  at: number;
  received: ClientMessage[];
  send(frame: ServerMessage | string): void;
  /** The first not yet taken message of this type, waiting for it when needed. */
  next<T extends ClientMessage['type']>(type: T, timeoutMs?: number): Promise<Extract<ClientMessage, { type: T }>>;
  close(code?: number, reason?: string): void;
  closed: Promise<{ code: number; reason: string }>;
}

export interface TestRelay {
  url: string;
  connections: RelayConnection[];
  /** The next connection not yet taken, waiting for it when needed. */
  nextConnection(timeoutMs?: number): Promise<RelayConnection>;
  close(): Promise<void>;
}

export interface TestRelayOptions {
  /** Send `welcome` on connect. Default true. */
  welcome?: boolean;
  /** Answer `ping` with `pong`. Default true. */
  pong?: boolean;
  /** Runs on each connection before anything else (e.g. to close it at once). */
  onConnection?(c: RelayConnection): void;
}

export async function startTestRelay(options: TestRelayOptions = {}): Promise<TestRelay> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => (p.has(PROTOCOL) ? PROTOCOL : false) });
  await new Promise<void>((r) => wss.once('listening', r));
  const connections: RelayConnection[] = [];
  // connections and messages arrive as events: waits look again at each
  const arrivals = changes();
  let taken = 0;

  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    const taken = new Set<number>();
    const c: RelayConnection = {
      ws,
      offered: String(req.headers['sec-websocket-protocol'] ?? '').split(/\s*,\s*/),
      protocol: ws.protocol,
      at: Date.now(),
      received: [],
      send: (f) => ws.readyState === WebSocket.OPEN && ws.send(typeof f == 'string' ? f : JSON.stringify(f)),
      next: (type, timeoutMs = 3000) =>
        arrivals.until(() => {
          const i = c.received.findIndex((m, j) => m.type === type && !taken.has(j));
          if (i < 0) return undefined;
          taken.add(i);
          return c.received[i] as any;
        }, { what: `a "${type}" message`, timeoutMs }),
      close: (code, reason) => ws.close(code, reason),
      closed: new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() }))),
    };
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as ClientMessage;
      c.received.push(m);
      if (m.type === 'ping' && options.pong !== false) c.send({ type: 'pong' });
      arrivals.changed();
    });
    connections.push(c);
    options.onConnection?.(c);
    if (options.welcome !== false) c.send({ type: 'welcome', tenant: '7', seq: 0 });
    arrivals.changed();
  });

  const port = (wss.address() as { port: number }).port;
  return {
    url: `ws://127.0.0.1:${port}/ws`,
    connections,
    nextConnection: (timeoutMs = 3000) => arrivals.until(() => connections[taken] && connections[taken++], { what: 'a connection', timeoutMs }),
    async close() {
      for (const c of connections) c.ws.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}

/** An unsigned JWT (the client never verifies; only the relay does). */
export function fakeJwt(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}.c2ln`;
}
