// GET /sse: one subscription as Server-Sent Events. The request decides it (token, origin, query), every refusal is plain
// HTTP before the stream exists, and event ids are cursors, so a browser's EventSource resumes by itself.
import type { ErrorCode, SubscribeMessage } from '../../client/shared/protocol.js';
import { AuthError, type Principal, type TokenVerifier } from '../routing/auth.js';
import { parseClientMessage } from './inbound.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import { presenceRefusal } from '../presence/presence.js';
import type { Refusals } from './refusals.js';
import type { HttpReply, HttpRequest, StreamDecision } from '../server/server.js';
import type { SocketData } from '../routing/socket-data.js';
import type { Subscriptions } from '../routing/subscriptions.js';

/** The subscription id of a stream whose query names none. */
export const DEFAULT_STREAM_ID = 'sse';

/** HTTP status of each refusal a stream request can get. */
const statusOf: Partial<Record<ErrorCode | 'origin_not_allowed' | 'try_again_later' | 'bad_request', number>> = {
  bad_token: 401,
  origin_not_allowed: 403,
  table_not_allowed: 403,
  presence_not_allowed: 403,
  unknown_table: 404,
  try_again_later: 503,
};

export interface StreamOptions {
  verifier: TokenVerifier;
  allowedOrigins: readonly string[] | undefined;
  rateLimit: number;
  subscriptions: Pick<Subscriptions, 'plan'>;
  metrics: Metrics;
  log: Logger;
  refusals: Refusals;
}

/** The CORS headers for `origin`: a page on another origin may read the stream (and send `Authorization`). */
export function corsHeaders(origin: string, allowed: readonly string[] | undefined): Record<string, string> {
  if (!origin || (allowed && !allowed.includes(origin))) return {};
  return { 'access-control-allow-origin': origin, vary: 'origin' };
}

/** The answer to a CORS preflight of GET /sse. */
export function preflight(req: HttpRequest, allowed: readonly string[] | undefined): HttpReply {
  const cors = corsHeaders(req.header('origin'), allowed);
  if (!cors['access-control-allow-origin']) return { status: 403, headers: { 'content-type': 'application/json' }, body: '{"error":"origin_not_allowed","message":"origin not allowed"}' };
  return {
    status: 204,
    headers: { ...cors, 'access-control-allow-methods': 'GET', 'access-control-allow-headers': 'authorization, last-event-id', 'access-control-max-age': '600' },
  };
}

/** The subscribe message a stream's query asks for, or why it is not one. `Last-Event-ID` wins over `since` and `snapshot`. */
export function streamRequest(req: HttpRequest): { subscribe: SubscribeMessage | undefined; presence: boolean } | { code: ErrorCode | 'bad_request'; message: string } {
  const flag = req.query('presence');
  if (flag !== undefined && !['1', 'true', '0', 'false'].includes(flag)) return { code: 'bad_request', message: 'presence must be 1 or 0' };
  const presence = flag === '1' || flag === 'true';
  const table = req.query('table');
  if (table === undefined) return { subscribe: undefined, presence };
  const msg: Record<string, unknown> = { type: 'subscribe', id: req.query('id') ?? DEFAULT_STREAM_ID, table };
  const filter = req.query('filter');
  if (filter !== undefined) {
    try {
      msg.filter = JSON.parse(filter);
    } catch {
      return { code: 'bad_filter', message: 'filter must be URL-encoded JSON, such as {"status":{"eq":"open"}}' };
    }
  }
  const snapshot = req.query('snapshot');
  if (snapshot !== undefined && !['1', 'true', '0', 'false'].includes(snapshot)) return { code: 'bad_request', message: 'snapshot must be 1 or 0' };
  if (snapshot === '1' || snapshot === 'true') msg.snapshot = true;
  const since = req.query('since');
  if (since !== undefined) {
    if (!/^\d{1,16}$/.test(since)) return { code: 'bad_request', message: `since must be a whole number (a seq); got ${JSON.stringify(since.slice(0, 40))}` };
    msg.since = Number(since);
  }
  const last = req.header('last-event-id');
  if (last === 'reset') delete msg.since; // told to start afresh: a snapshot if asked for, else live from now
  else if (last !== '') {
    if (!/^\d{1,16}$/.test(last)) return { code: 'bad_request', message: 'Last-Event-ID must be an event id this relay sent (a seq, or reset)' };
    msg.since = Number(last);
    delete msg.snapshot;
  }
  const parsed = parseClientMessage(JSON.stringify(msg));
  if (!parsed.ok) return { code: parsed.code === 'bad_subscription' ? 'bad_request' : parsed.code, message: parsed.message.replace(/^subscribe: /, '') };
  return { subscribe: parsed.message as SubscribeMessage, presence };
}

/** Decides a `GET /sse` request: origin, token, then the subscription its query asks for. */
export function createStreamAccept(o: StreamOptions) {
  return (req: HttpRequest): StreamDecision<SocketData> | Promise<StreamDecision<SocketData>> => {
    const origin = req.header('origin');
    const cors = corsHeaders(origin, o.allowedOrigins);
    const refuse = (code: keyof typeof statusOf, message: string, label?: string): StreamDecision<SocketData> => {
      if (label) {
        o.metrics.authFailures.inc({ reason: label });
        o.refusals.note({ reason: label, message, remote: req.remoteAddress, forwardedFor: req.header('x-forwarded-for'), origin, transport: 'sse' });
      }
      return { refuse: { status: statusOf[code] ?? 400, headers: { 'content-type': 'application/json', ...cors }, body: JSON.stringify({ error: code, message }) } };
    };
    if (o.allowedOrigins && origin && !o.allowedOrigins.includes(origin)) return refuse('origin_not_allowed', 'origin not allowed', 'origin');
    const asked = streamRequest(req);
    if ('code' in asked) return refuse(asked.code, asked.message);
    const accept = (principal: Principal): StreamDecision<SocketData> => {
      if (asked.subscribe) {
        const plan = o.subscriptions.plan(principal, asked.subscribe);
        if ('code' in plan) return refuse(plan.code, plan.message);
      }
      const noPresence = asked.presence ? presenceRefusal(principal) : undefined;
      if (noPresence) return refuse('presence_not_allowed', noPresence);
      const data: SocketData = {
        principal, subs: undefined, tokens: o.rateLimit, refilledAt: Date.now(), strikes: 0, dropped: 0, closed: false,
        drained: undefined, refused: undefined, stream: { subscribe: asked.subscribe, presence: asked.presence },
      };
      // A token check is one short answer: its connection closes with it rather than idling in the client's pool.
      return { accept: data, headers: asked.subscribe || asked.presence ? cors : { ...cors, connection: 'close' } };
    };
    const reject = (err: unknown): StreamDecision<SocketData> => {
      if (err instanceof AuthError) {
        return err.reason === 'keys_unavailable' ? refuse('try_again_later', err.message, err.reason) : refuse('bad_token', err.message, err.reason);
      }
      o.log.error({ err }, 'token verification failed unexpectedly');
      return refuse('bad_token', 'token not accepted', 'malformed');
    };
    const auth = req.header('authorization');
    const token = /^bearer /i.test(auth) ? auth.slice(7).trim() : req.query('token') || undefined;
    // the verifier's own words name the WebSocket's ways to send a token; a stream sends it as HTTP does
    if (!token) return refuse('bad_token', 'no token: send it in the header Authorization: Bearer <jwt>, or as ?token=', 'missing');
    let result: Principal | Promise<Principal>;
    try {
      result = o.verifier.verify(token);
    } catch (err) {
      return reject(err);
    }
    return result instanceof Promise ? result.then(accept, reject) : accept(result);
  };
}

/** The digits after `"seq":` in a frame (the first occurrence: a string value before it cannot hold an unescaped quote). */
function seqOf(frame: string): string | undefined {
  const at = frame.indexOf('"seq":');
  if (at < 0) return undefined;
  let end = at + 6;
  while (end < frame.length && frame.charCodeAt(end) >= 48 && frame.charCodeAt(end) <= 57) end++;
  return end > at + 6 ? frame.slice(at + 6, end) : undefined;
}

/**
 * One frame as an event. Its id is a complete cursor, or absent: a `tx` frame that ends its transaction, the last page
 * of a snapshot, and (`live`: a stream without snapshot) the `subscribed` frame carry their seq; after a `reset` the id
 * is `reset`, so an EventSource's reconnect starts afresh. Frames are one line of JSON.
 */
export function sseEvent(frame: string, live = false): string {
  let id: string | undefined;
  if (frame.startsWith('{"type":"tx"')) {
    if (!frame.endsWith(',"more":true}')) id = seqOf(frame);
  } else if (frame.startsWith('{"type":"snapshot"')) {
    if (frame.endsWith(',"more":false}')) id = seqOf(frame);
  } else if (frame.startsWith('{"type":"subscribed"')) {
    if (live) id = seqOf(frame);
  } else if (frame.startsWith('{"type":"reset"')) id = 'reset';
  // a line break inside a frame would end the data line: JSON text never needs one, but never let one through
  const data = frame.includes('\n') ? frame.replace(/\r?\n/g, ' ') : frame;
  return id === undefined ? `data: ${data}\n\n` : `id: ${id}\ndata: ${data}\n\n`;
}

/** The last event of a stream the relay ends for a reason (none for a normal end). */
export function closingEvent(code: number, reason: string): string {
  return code === 1000 ? '' : `data: ${JSON.stringify({ type: 'close', code, reason })}\n\n`;
}

/** Seconds between heartbeat comments: well inside the usual proxy timeouts (60 s), and inside the relay's idle timeout. */
export function heartbeatSeconds(idleTimeout: number): number {
  return Math.max(1, Math.min(15, Math.floor(idleTimeout / 2)));
}
