// One Server-Sent Events stream of the relay (`GET /sse?table=orders`) for the load side, with the handlers of connection.ts,
// so that bench:sse reads SSE and WebSocket deliveries through the same accounting. Events are read with the client's parser.
import http from 'node:http';
import { sseParser } from '../../client/sse-socket.js';
import { parseCached, type ConnectionHandlers, type Op } from './connection.js';

interface Frame {
  type: string;
  at?: string;
  code?: number;
  reason?: string;
  message?: string;
  changes?: Array<{ table: string; op: Op; row: Record<string, unknown> | null }>;
}

export interface SseOptions {
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  token: string;
  localAddress?: string | undefined;
  timeoutMs: number;
}

/** Opens the stream; ready on its `subscribed` event. Returns a function that closes it. */
export function openSseConnection(o: SseOptions, h: ConnectionHandlers): () => void {
  let ready = false;
  let done = false;
  const fail = (reason: string) => {
    if (done || ready) return;
    done = true;
    clearTimeout(timer);
    req.destroy();
    h.onFail(reason);
  };
  const timer = setTimeout(() => fail('no subscribed event in time'), o.timeoutMs);
  const req = http.get(
    `${o.baseUrl}/sse?table=public.orders&id=o`,
    { agent: false, headers: { accept: 'text/event-stream', authorization: `Bearer ${o.token}` }, ...(o.localAddress ? { localAddress: o.localAddress } : {}) },
    (res) => {
      res.setEncoding('utf8');
      if (res.statusCode !== 200) {
        let body = '';
        res.on('data', (c: string) => (body += c));
        res.on('end', () => fail(`HTTP ${res.statusCode} ${body.slice(0, 120)}`));
        return;
      }
      const parse = sseParser((data) => {
        const m = parseCached<Frame>(data);
        if (m.type === 'tx') {
          for (const c of m.changes ?? []) if (c.table === 'public.orders' && c.row) h.onDelivery({ op: c.op, row: c.row, committedAt: m.at });
        } else if (m.type === 'subscribed') {
          if (ready || done) return;
          ready = true;
          clearTimeout(timer);
          h.onReady(false);
        } else if (m.type === 'error') fail(`relay error: ${m.message ?? 'unknown'}`);
        else if (m.type === 'close') fail(`closed with ${m.code ?? 0} before ready: ${m.reason ?? ''}`);
      });
      res.on('data', (c: string) => parse(c));
      res.on('close', () => {
        if (ready && !done) {
          done = true;
          h.onClose(0);
        } else fail('stream ended before ready');
      });
    },
  );
  req.on('error', (err) => fail(err.message));
  return () => {
    done = true;
    clearTimeout(timer);
    req.destroy();
  };
}
