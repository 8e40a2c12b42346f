// The /ws endpoint: the server's WebSocket behaviour, from the upgrade through the messages to the close.
import type { RelayConfig } from '../ops/relay-config.js';
import type { Metrics } from '../ops/metrics.js';
import type { RelayServer, SocketBehavior } from '../server/server.js';
import type { SocketData } from '../routing/socket-data.js';
import type { SocketWriter } from '../routing/socket-writer.js';
import type { Connections } from './connections.js';

/** What {@link registerWebSocket} needs: the limits, and the handlers it connects to the server. */
export interface WebSocketEndpointOptions {
  config: Pick<RelayConfig, 'maxMessage' | 'idleTimeout' | 'maxBackpressure' | 'compression'>;
  /** Decides the upgrade (relay/edge/upgrade.ts). */
  upgrade: SocketBehavior<SocketData>['upgrade'];
  /** Handles one message (relay/edge/messages.ts). */
  message: SocketBehavior<SocketData>['message'];
  connections: Connections;
  io: SocketWriter;
  metrics: Metrics;
}

/** Serves WebSockets at `/ws`: a refused token's socket is closed at once with its reason, the rest join `connections`. */
export function registerWebSocket(server: RelayServer, o: WebSocketEndpointOptions): void {
  const { config, connections, io, metrics } = o;
  server.websocket<SocketData>('/ws', {
    // above this the server closes the connection itself (uWS abruptly, ws with 1009); up to it we answer 1009 ourselves
    maxPayloadLength: Math.max(config.maxMessage * 4, 1024 * 1024),
    idleTimeout: config.idleTimeout,
    // The hard limit (uWS skips frames above it) is never reached: the server hands a socket over ours to overflow right
    // after the published frame that took it there (direct sends check their result), and it leaves its topics.
    maxBackpressure: config.maxBackpressure * 4,
    overflowAt: config.maxBackpressure,
    overflow: (ws) => io.overflow(ws),
    compression: config.compression === 'on',
    upgrade: o.upgrade,
    open: (ws) => {
      const refused = ws.data.refused;
      if (refused) {
        // opened only to say why the token was refused (a close reason holds at most 123 bytes)
        ws.data.closed = true;
        metrics.closes.inc({ code: String(refused.code) });
        ws.end(refused.code, Buffer.from(refused.reason).subarray(0, 123).toString());
        return;
      }
      connections.opened(ws, 'websocket');
    },
    message: o.message,
    drain: (ws) => connections.drain(ws),
    close: (ws) => {
      if (!ws.data.refused) connections.closed(ws, 'websocket');
    },
  });
}
