// One Server-Sent Events stream of the relay (`GET /sse?table=orders`) for the load side, with the handlers of connection.ts,
// so that bench/sse.ts reads SSE and WebSocket deliveries through the same accounting.
import http from 'node:http';
import type { ConnectionHandlers, Op } from './connection.js';

/**
 * The `data` of each event in a stream of text chunks, cut anywhere. Comment lines (`: ping`) and other fields are skipped;
 * several `data` lines of one event are joined with a line break, as EventSource does.
 */
export class SseParser {
  #buffer = '';
  readonly #onData: (data: string) => void;

  constructor(onData: (data: string) => void) {
    this.#onData = onData;
  }

  push(chunk: string): void {
    this.#buffer += chunk;
    let end: number;
    while ((end = this.#buffer.indexOf('\n\n')) >= 0) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      let data: string | undefined;
      for (const line of block.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
        data = data === undefined ? value : `${data}\n${value}`;
      }
      if (data !== undefined) this.#onData(data);
    }
  }
}

/** Every stream of a tenant receives the same event: one load process parses each distinct one once (as connection.ts does). */
const parsed = new Map<string, unknown>();
function parseCached<T>(s: string): T {
  let v = parsed.get(s);
  if (v === undefined) {
    v = JSON.parse(s);
    parsed.set(s, v);
    if (parsed.size > 512) parsed.delete(parsed.keys().next().value!);
  }
  return v as T;
}

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
      const parser = new SseParser((data) => {
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
      res.on('data', (c: string) => parser.push(c));
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
