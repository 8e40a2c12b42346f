// One authenticated, subscribed connection to a target, over the same `ws` client for all three so that the load side costs the same.
//
// Socket.IO is spoken directly (Engine.IO v4 / Socket.IO v5 over WebSocket: `0` open, `40{auth}` connect,
// `42[event,data]` events, `2`/`3` ping/pong): socket.io-client would make the load side, not the server,
// the heavier half for target A alone. The smoke test checks the baseline with the real socket.io-client.
import WebSocket from 'ws';
import type { TargetName } from '../lib/targets.js';
import { lifecycle } from './connection-lifecycle.js';

export type Op = 'insert' | 'update' | 'delete';

/** A delivered row change as the three targets all carry it. */
export interface Delivery {
  op: Op;
  row: Record<string, unknown>;
  /** pgrelay only: the transaction's commit time from the database clock (`at`). */
  committedAt?: string | undefined;
}

export interface ConnectionHandlers {
  /** `compressed`: permessage-deflate was negotiated. */
  onReady(compressed: boolean): void;
  onFail(reason: string): void;
  /** After ready: the socket closed. */
  onClose(code: number): void;
  onDelivery(d: Delivery): void;
}

export interface ConnectionOptions {
  target: TargetName;
  baseUrl: string;
  token: string;
  localAddress?: string | undefined;
  timeoutMs: number;
  /** Offer permessage-deflate, as browsers do (ws's default offer); otherwise offer nothing. */
  compression?: boolean | undefined;
}

/** The connection's TCP socket, for the bytes read on it (frames as they came over the wire), once upgraded. */
export interface Wire {
  socket?: { readonly bytesRead: number };
}

const socketIoOps: Record<string, Op> = { 'order:created': 'insert', 'order:updated': 'update', 'order:deleted': 'delete' };
const wsOps: Record<string, Op> = socketIoOps;

/** pgrelay and pgrelay-poll (its ticker polls; the protocol is the same). Not targets.ts's isPgrelay: load workers import no database code. */
const speaksPgrelay = (t: TargetName) => t.startsWith('pgrelay');

function endpoint(o: ConnectionOptions): { url: string; protocols: string[] } {
  if (speaksPgrelay(o.target)) return { url: `${o.baseUrl}/ws`, protocols: ['pgrelay.v1', `bearer.${o.token}`] };
  if (o.target === 'socketio') return { url: `${o.baseUrl}/socket.io/?EIO=4&transport=websocket`, protocols: [] };
  return { url: `${o.baseUrl}/ws?token=${encodeURIComponent(o.token)}`, protocols: [] };
}

/**
 * JSON.parse with a small cache of the last distinct frames: every socket of a tenant receives the same bytes, so one
 * load process parses each frame once instead of once per socket. Applied to all three targets alike, it keeps the
 * load side cheaper than the servers, so that a fan-out ceiling measures the server and not this core.
 */
const parsed = new Map<string, unknown>();
export function parseCached<T>(s: string): T {
  let v = parsed.get(s);
  if (v === undefined) {
    v = JSON.parse(s);
    parsed.set(s, v);
    if (parsed.size > 512) parsed.delete(parsed.keys().next().value!);
  }
  return v as T;
}

/** A frame of pgrelay's protocol as the load side reads it (WebSocket message or SSE event). */
export interface PgrelayFrame {
  type: string;
  id?: string;
  at?: string;
  code?: number;
  reason?: string;
  message?: string;
  changes?: Array<{ table: string; op: Op; row: Record<string, unknown> | null }>;
}

/** A `tx` frame's changes of `public.orders` to the handlers, with the transaction's commit time. */
export function deliverChanges(m: PgrelayFrame, h: ConnectionHandlers): void {
  for (const c of m.changes ?? []) if (c.table === 'public.orders' && c.row) h.onDelivery({ op: c.op, row: c.row, committedAt: m.at });
}

/** Opens the connection; returns a function that closes it. `wire.socket` is set once the upgrade succeeds. */
export function openConnection(o: ConnectionOptions, h: ConnectionHandlers, wire: Wire = {}): () => void {
  const { url, protocols } = endpoint(o);
  const ws = new WebSocket(url, protocols, {
    perMessageDeflate: o.compression === true,
    // The load side trusts the server's UTF-8: it is not what is measured.
    skipUTF8Validation: true,
    handshakeTimeout: o.timeoutMs,
    ...(o.localAddress ? { localAddress: o.localAddress } : {}),
  });
  ws.once('upgrade', (res) => (wire.socket = res.socket));
  const life = lifecycle(h, o.timeoutMs, 'no ready message in time', () => ws.terminate());
  const fail = life.fail;
  const becomeReady = () => life.ready(ws.extensions.split(',').includes('permessage-deflate'));

  ws.on('error', (err) => fail(err.message));
  ws.on('unexpected-response', (_req, res) => fail(`HTTP ${res.statusCode}`));
  ws.on('close', (code) => life.ended(code, `closed with ${code} before ready`));

  if (speaksPgrelay(o.target)) {
    ws.on('open', () => ws.send('{"type":"subscribe","id":"o","table":"public.orders"}'));
    ws.on('message', (data) => {
      const m = parseCached<PgrelayFrame>(String(data));
      if (m.type === 'tx') deliverChanges(m, h);
      else if (m.type === 'subscribed' && m.id === 'o') becomeReady();
      else if (m.type === 'error') fail(`relay error: ${m.message ?? 'unknown'}`);
    });
  } else if (o.target === 'socketio') {
    ws.on('message', (data) => {
      const s = String(data);
      if (s.startsWith('42')) {
        const [event, row] = parseCached<[string, Record<string, unknown>]>(s.slice(2));
        const op = socketIoOps[event];
        if (op) h.onDelivery({ op, row });
      } else if (s === '2') ws.send('3');
      else if (s.startsWith('0')) ws.send(`40${JSON.stringify({ token: o.token })}`);
      else if (s.startsWith('40')) becomeReady();
      else if (s.startsWith('44')) fail(`connect_error ${s.slice(2)}`);
    });
  } else {
    ws.on('open', becomeReady);
    ws.on('message', (data) => {
      const m = parseCached<{ type: string; row: Record<string, unknown> }>(String(data));
      const op = wsOps[m.type];
      if (op) h.onDelivery({ op, row: m.row });
    });
  }

  return life.stop;
}
