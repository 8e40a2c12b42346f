// The /sse endpoint: the server's Server-Sent Events behaviour (one subscription per stream) and its CORS preflight.
import type { RelayConfig } from '../ops/relay-config.js';
import type { Logger } from '../ops/log.js';
import type { Presence } from '../presence/presence.js';
import type { RelayServer, StreamBehavior } from '../server/server.js';
import type { SocketData } from '../routing/socket-data.js';
import type { SocketWriter } from '../routing/socket-writer.js';
import type { Subscriptions } from '../routing/subscriptions.js';
import type { Connections } from './connections.js';
import { closingEvent, heartbeatSeconds, preflight, sseEvent } from './sse.js';

/** What {@link registerEventStream} needs: the limits, the request's decision, and what a stream starts. */
export interface SseEndpointOptions {
  config: Pick<RelayConfig, 'allowedOrigins' | 'idleTimeout' | 'maxBackpressure'>;
  /** Decides the request (relay/edge/sse.ts `createStreamAccept`). */
  accept: StreamBehavior<SocketData>['accept'];
  connections: Connections;
  subscriptions: Pick<Subscriptions, 'subscribe'>;
  presence: Pick<Presence, 'join'>;
  io: SocketWriter;
  log: Logger;
}

/**
 * Serves `GET /sse` (and its `OPTIONS` preflight): the same subscriptions as WebSockets, one per stream, for clients
 * behind proxies that refuse WebSockets. A stream that asks for no table and no presence was a token check: the welcome
 * says it passed, and it ends.
 */
export function registerEventStream(server: RelayServer, o: SseEndpointOptions): void {
  const { config, connections, io } = o;
  server.route('OPTIONS', '/sse', (req) => preflight(req, config.allowedOrigins));
  server.eventStream<SocketData>('/sse', {
    heartbeat: heartbeatSeconds(config.idleTimeout),
    maxBackpressure: config.maxBackpressure * 4,
    overflowAt: config.maxBackpressure,
    overflow: (s) => io.overflow(s),
    accept: o.accept,
    event: (frame, d) => sseEvent(frame, d?.stream?.subscribe !== undefined && !d.stream.subscribe.snapshot),
    closing: closingEvent,
    open: (s) => {
      connections.opened(s, 'sse');
      const { subscribe: msg, presence: present } = s.data.stream!;
      // without a table or presence the request was a token check: the welcome says it passed
      if (!msg && !present) return io.end(s, 1000, 'token checked');
      try {
        if (present) o.presence.join(s);
        if (msg) o.subscriptions.subscribe(s, msg);
      } catch (err) {
        o.log.error({ err }, 'unexpected error starting an event stream');
        io.error(s, 'internal', 'the relay could not serve this stream');
        io.end(s, 1011, 'internal error');
      }
    },
    drain: (s) => connections.drain(s),
    close: (s) => connections.closed(s, 'sse'),
  });
}
