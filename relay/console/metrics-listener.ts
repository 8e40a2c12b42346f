// The METRICS_PORT listener: /metrics, /healthz and /readyz on a port of their own (127.0.0.1 by default), away from the clients.
//
// Plain `node:http` whichever server serves the clients: Prometheus and probes send a few requests a minute. Each relay
// process needs a METRICS_PORT of its own (no SO_REUSEPORT here), so that a scrape always reaches the same process.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PgRelayError } from '../../client/shared/errors.js';
import { internalError } from '../server/http-request.js';
import { answer, nodeRequest, notFound, writeReply } from '../server/node-http.js';
import type { HttpHandler } from '../server/server.js';

/** A running metrics listener. */
export interface MetricsListener {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `GET <path>` with `routes.get(path)` on `host:port`; rejects with `port_unavailable` naming METRICS_PORT. */
export function startMetricsListener(host: string, port: number, routes: ReadonlyMap<string, HttpHandler>): Promise<MetricsListener> {
  const server = http.createServer((req, res) => {
    req.resume();
    const request = nodeRequest(req);
    const handler = req.method === 'GET' ? routes.get(request.path) : undefined;
    if (!handler) return writeReply(res, notFound);
    answer(() => handler(request), (reply) => writeReply(res, reply), internalError);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new PgRelayError('port_unavailable', `Cannot listen on ${host}:${port} for metrics: the port is in use or not allowed; set METRICS_PORT (or --metrics-port) to a free port, one per relay process.`, { cause: err }));
    });
    server.listen(port, host, () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections();
        }),
      });
    });
  });
}
