// The relay process: one uWebSockets.js app serving health, readiness, metrics and the WebSocket stream.
import type { Logger } from './log.js';
import { listenPort } from './listen-port.js';
import { loadUws, type UwsBuild } from './uws.js';

/** What {@link startRelay} needs. */
export interface RelayOptions {
  /** Interface to listen on. */
  host: string;
  /** Port; 0 picks a free one. */
  port: number;
  log: Logger;
}

/** A running relay. */
export interface Relay {
  /** The bound port. */
  readonly port: number;
  /** The native uWS build in use. */
  readonly uws: UwsBuild;
  /** Stops accepting, closes every socket with 1001, and releases the port. */
  close(): Promise<void>;
}

export async function startRelay(options: RelayOptions): Promise<Relay> {
  const { uws, build } = loadUws();
  const app = uws.App();
  app.get('/healthz', (res) => {
    res.cork(() => {
      res.writeHeader('content-type', 'application/json').end('{"status":"ok"}');
    });
  });
  app.any('/*', (res) => {
    res.cork(() => {
      res.writeStatus('404 Not Found').writeHeader('content-type', 'application/json').end('{"error":"not_found"}');
    });
  });
  const { socket, port } = await listenPort(uws, app, options.host, options.port);
  return {
    port,
    uws: build,
    async close() {
      uws.us_listen_socket_close(socket);
    },
  };
}
