// Baseline A: Express + Socket.IO 4 + pg-listen, built the way their docs describe a live per-tenant orders feed, tuned as the Socket.IO docs recommend.
//
// A row trigger (orders-notify.sql) sends `{op, row}` with pg_notify; one pg-listen session receives it and
// emits `order:created|updated|deleted` to the room of the row's tenant. JWT (HS256) is checked in the
// handshake middleware from `auth.token`. Tuning from "Performance tuning" and "Memory usage" in the
// Socket.IO docs: WebSocket transport only (no HTTP long-polling, no upgrade), no per-message deflate,
// no HTTP compression, the initial HTTP request discarded. A room broadcast encodes the packet once and
// (with ws) pre-computes the WebSocket frame once for every socket of the room.
//
// Env: DATABASE_URL, PORT, HOST (default 127.0.0.1), JWT_SECRET (≥ 32 characters): orders-feed.ts baselineEnv.
import http from 'node:http';
import express from 'express';
import { jwtVerify } from 'jose';
import { Server } from 'socket.io';
import { baselineEnv, events, listenToOrders } from './orders-feed.js';

const { databaseUrl, secret, port, host } = baselineEnv();

const app = express();
app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' });
});
const server = http.createServer(app);

const io = new Server(server, {
  transports: ['websocket'],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
});

// Socket.IO docs, "Memory usage": the handshake request is kept for the socket's lifetime unless dropped.
io.engine.on('connection', (rawSocket: { request: unknown }) => {
  rawSocket.request = null;
});

io.use(async (socket, next) => {
  try {
    const token: unknown = socket.handshake.auth.token;
    if (typeof token !== 'string') throw new Error('no token');
    const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'] });
    if (typeof payload.tenant_id !== 'string') throw new Error('no tenant');
    socket.data.tenant = payload.tenant_id;
    next();
  } catch {
    next(new Error('unauthorized'));
  }
});

io.on('connection', (socket) => {
  void socket.join(`tenant:${socket.data.tenant as string}`);
});

const subscriber = await listenToOrders(databaseUrl, (n) => {
  io.to(`tenant:${n.row.tenant_id}`).emit(events[n.op], n.row);
});
server.listen(port, host, () => {
  console.log(JSON.stringify({ level: 'info', msg: `socketio baseline listening on http://${host}:${port}` }));
});

const stop = () => {
  io.close();
  void subscriber.close().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
