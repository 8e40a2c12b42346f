// One Server-Sent Events stream of the relay (`GET /sse?table=orders`) for the load side, reported through connection.ts's handlers.
// So bench:sse reads SSE and WebSocket deliveries through the same accounting; events are read with the client's own parser.
import http from 'node:http';
import { sseParser } from '../../client/sse-socket.js';
import { deliverChanges, parseCached, type ConnectionHandlers, type PgrelayFrame } from './connection.js';
import { lifecycle } from './connection-lifecycle.js';

export interface SseOptions {
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  token: string;
  localAddress?: string | undefined;
  timeoutMs: number;
}

/** Opens the stream; ready on its `subscribed` event. Returns a function that closes it. */
export function openSseConnection(o: SseOptions, h: ConnectionHandlers): () => void {
  const life = lifecycle(h, o.timeoutMs, 'no subscribed event in time', () => req.destroy());
  const req = http.get(
    `${o.baseUrl}/sse?table=public.orders&id=o`,
    { agent: false, headers: { accept: 'text/event-stream', authorization: `Bearer ${o.token}` }, ...(o.localAddress ? { localAddress: o.localAddress } : {}) },
    (res) => {
      res.setEncoding('utf8');
      if (res.statusCode !== 200) {
        let body = '';
        res.on('data', (c: string) => (body += c));
        res.on('end', () => life.fail(`HTTP ${res.statusCode} ${body.slice(0, 120)}`));
        return;
      }
      const parse = sseParser((data) => {
        const m = parseCached<PgrelayFrame>(data);
        if (m.type === 'tx') deliverChanges(m, h);
        else if (m.type === 'subscribed') life.ready(false);
        else if (m.type === 'error') life.fail(`relay error: ${m.message ?? 'unknown'}`);
        else if (m.type === 'close') life.fail(`closed with ${m.code ?? 0} before ready: ${m.reason ?? ''}`);
      });
      res.on('data', (c: string) => parse(c));
      res.on('close', () => life.ended(0, 'stream ended before ready'));
    },
  );
  req.on('error', (err) => life.fail(err.message));
  return life.stop;
}
