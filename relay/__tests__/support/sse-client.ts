// A raw Server-Sent Events client for relay tests: one GET over a connection of its own, every event recorded as sent.
import http from 'node:http';
import { changes } from '../../../db/testing/index.js';
import type { Frame } from './relay-harness.js';

/** One event: its id field (if it had one) and its frame. */
export interface SseEvent {
  id: string | undefined;
  frame: Frame;
}

export interface SseClient {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body of a refused request (not a stream). */
  body: string;
  events: SseEvent[];
  /** Comment lines received (heartbeats), without the colon. */
  comments: string[];
  frames(): Frame[];
  txs(): Frame[];
  /** The id of the last event that had one (what EventSource sends back as Last-Event-ID). */
  lastId(): string | undefined;
  until(cond: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  /** Resolves when the response ended (or the connection dropped). */
  ended: Promise<void>;
  /** Stop reading (the kernel buffers fill, then the relay's) / read again. */
  pause(): void;
  resume(): void;
  close(): void;
}

/** Opens `url` (a full `http://…/sse?…` URL). Resolves once the status line arrived; a refusal's body is read whole. */
export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const events: SseEvent[] = [];
      const comments: string[] = [];
      const arrivals = changes();
      let body = '';
      let buffer = '';
      let id: string | undefined;
      let data: string[] = [];
      let lastId: string | undefined;
      const line = (l: string) => {
        if (l === '') {
          if (data.length > 0) events.push({ id, frame: JSON.parse(data.join('\n')) as Frame });
          if (id !== undefined) lastId = id;
          id = undefined;
          data = [];
          return;
        }
        if (l.startsWith(':')) return void comments.push(l.slice(1).trim());
        const colon = l.indexOf(':');
        const field = colon < 0 ? l : l.slice(0, colon);
        const value = colon < 0 ? '' : l.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') data.push(value);
        else if (field === 'id') id = value;
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (res.statusCode !== 200) return void (body += chunk);
        buffer += chunk;
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          line(buffer.slice(0, nl).replace(/\r$/, ''));
          buffer = buffer.slice(nl + 1);
        }
        arrivals.changed();
      });
      const ended = new Promise<void>((done) => {
        res.on('close', () => {
          done();
          arrivals.changed();
        });
      });
      const until = async (cond: () => boolean, timeoutMs = 10_000, what = 'condition') => {
        await arrivals.until(cond, { timeoutMs, what: () => `${what}; last events: ${JSON.stringify(events.slice(-3)).slice(0, 600)}` });
      };
      const client: SseClient = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        get body() {
          return body;
        },
        events,
        comments,
        frames: () => events.map((e) => e.frame),
        txs: () => events.filter((e) => e.frame.type === 'tx').map((e) => e.frame),
        lastId: () => lastId,
        until,
        ended,
        pause: () => res.socket.pause(),
        resume: () => res.socket.resume(),
        close: () => req.destroy(),
      };
      if (res.statusCode === 200) resolve(client);
      else res.on('end', () => resolve(client));
    });
    req.on('error', reject);
  });
}
