// Baseline B: a raw `ws` server with the same row trigger, the JWT checked in the HTTP upgrade, and a Map<tenant, Set<socket>>.
//
// Each notification is serialized once and framed once (the pre-computed frame Socket.IO also uses, as the
// ws maintainers suggest for broadcasts: websockets/ws#617), then written to every socket of its tenant.
// No per-message deflate (ws's default for servers). A bad token gets HTTP 401 and no socket.
//
// Env: DATABASE_URL, PORT, HOST (default 127.0.0.1), JWT_SECRET (≥ 32 characters): orders-feed.ts baselineEnv.
// Clients: ws://HOST:PORT/ws?token=<jwt>, or the token offered as subprotocol `bearer.<jwt>`.
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { jwtVerify } from 'jose';
import * as wsModule from 'ws';
import WebSocket, { WebSocketServer } from 'ws';
import { baselineEnv, events, listenToOrders } from './orders-feed.js';

const { databaseUrl, secret, port, host } = baselineEnv();

const tenants = new Map<string, Set<WebSocket>>();

const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'application/json' }).end(req.url === '/healthz' ? '{"status":"ok"}' : '{"error":"not_found"}');
});
const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  clientTracking: false,
  handleProtocols: (protocols) => (protocols.has('pgrelay.v1') ? 'pgrelay.v1' : false),
});

function tokenOf(req: http.IncomingMessage): string | undefined {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const q = url.searchParams.get('token');
  if (q) return q;
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
  return offered.find((p) => p.startsWith('bearer.'))?.slice('bearer.'.length);
}

function refuse(socket: Duplex, status: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => socket.destroy());
  if (!(req.url ?? '').startsWith('/ws')) return refuse(socket, '404 Not Found');
  const token = tokenOf(req);
  if (!token) return refuse(socket, '401 Unauthorized');
  jwtVerify(token, secret, { algorithms: ['HS256'] }).then(
    ({ payload }) => {
      const tenant = payload.tenant_id;
      if (typeof tenant !== 'string') return refuse(socket, '401 Unauthorized');
      wss.handleUpgrade(req, socket, head, (ws) => {
        let set = tenants.get(tenant);
        if (!set) tenants.set(tenant, (set = new Set()));
        set.add(ws);
        ws.on('error', () => ws.terminate());
        ws.once('close', () => {
          set.delete(ws);
          if (set.size === 0 && tenants.get(tenant) === set) tenants.delete(tenant);
        });
      });
    },
    () => refuse(socket, '401 Unauthorized'),
  );
});

// ws exports Sender but its types do not; a socket's sender is internal: fall back to the public send() should either change.
type Framed = { _sender?: { sendFrame(list: Buffer[], cb?: () => void): void } };
const Sender = (wsModule as unknown as { Sender?: { frame(d: Buffer, o: object): Buffer[] } }).Sender;
const frameOf = (data: Buffer): Buffer[] | undefined => Sender?.frame(data, { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false });

function broadcast(tenant: string, message: object): void {
  const set = tenants.get(tenant);
  if (!set) return;
  const data = Buffer.from(JSON.stringify(message));
  const frame = frameOf(data);
  for (const ws of set) {
    if (ws.readyState !== WebSocket.OPEN) continue;
    const sender = (ws as unknown as Framed)._sender;
    if (sender && frame) sender.sendFrame(frame);
    else ws.send(data, { binary: false, compress: false });
  }
}

const subscriber = await listenToOrders(databaseUrl, (n) => {
  broadcast(n.row.tenant_id, { type: events[n.op], row: n.row });
});
server.listen(port, host, () => {
  console.log(JSON.stringify({ level: 'info', msg: `ws baseline listening on http://${host}:${port}` }));
});

const stop = () => {
  for (const set of tenants.values()) for (const ws of set) ws.terminate();
  server.close();
  void subscriber.close().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
