// A socket's messages: rate limit, size and parse, then subscribe, unsubscribe, ping, presence or a fresh token.
import { CloseCode } from '../../client/shared/codes.js';
import { parseClientMessage } from './inbound.js';
import type { Logger } from '../ops/log.js';
import type { Presence } from '../presence/presence.js';
import type { RelaySocket as WS } from '../routing/socket-data.js';
import type { Subscriptions } from '../routing/subscriptions.js';
import { takeToken } from './token-bucket.js';
import { refreshToken, type TokenRefreshOptions } from './token-refresh.js';

/** What {@link createMessageHandler} needs from the relay. */
export interface MessagesOptions extends TokenRefreshOptions {
  /** `RELAY_RATE_LIMIT`: messages per second per socket, and the burst a socket may send at once. */
  rateLimit: number;
  /** `RELAY_MAX_MESSAGE`: the largest message in bytes; a larger one closes the socket with 1009. */
  maxMessage: number;
  subscriptions: Pick<Subscriptions, 'subscribe' | 'unsubscribe' | 'sameRules'>;
  presence: Pick<Presence, 'join' | 'leave' | 'sameMember'>;
  log: Logger;
}

/** The server's `message` handler: one client message handled, and no exception ever escaping to the server. */
export function createMessageHandler(o: MessagesOptions): (ws: WS, message: Uint8Array, isBinary: boolean) => void {
  const { io } = o;
  /** One client message: rate limit, size, parse, dispatch. */
  const onMessage = (ws: WS, message: Uint8Array, isBinary: boolean): void => {
    const d = ws.data;
    if (d.closed) return;
    if (!takeToken(d, o.rateLimit)) {
      if (++d.dropped > o.rateLimit) return io.end(ws, CloseCode.RateLimited, 'too many messages');
      return io.error(ws, 'rate_limited', `at most ${o.rateLimit} messages per second`, undefined, false);
    }
    if (message.byteLength > o.maxMessage) return io.end(ws, CloseCode.MessageTooBig, 'message too big');
    if (isBinary) return io.error(ws, 'bad_message', 'messages are JSON text frames');
    const parsed = parseClientMessage(Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString('utf8'));
    if (!parsed.ok) return io.error(ws, parsed.code, parsed.message, parsed.id);
    const msg = parsed.message;
    switch (msg.type) {
      case 'subscribe': return o.subscriptions.subscribe(ws, msg);
      case 'unsubscribe': return o.subscriptions.unsubscribe(ws, msg.id);
      case 'ping': return void ws.send('{"type":"pong"}');
      case 'presence': return msg.join ? o.presence.join(ws) : o.presence.leave(ws);
      case 'auth': return refreshToken(ws, msg.token, o);
    }
  };
  return (ws, message, isBinary) => {
    // An exception escaping a server handler would end the process: one bad message must never do that.
    try {
      onMessage(ws, message, isBinary);
    } catch (err) {
      o.log.error({ err }, 'unexpected error handling a message');
      if (!ws.data.closed) io.error(ws, 'internal', 'the relay could not handle this message');
    }
  };
}
