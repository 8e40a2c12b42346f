// The METRICS_PORT listener: /metrics, /healthz and /readyz on a port of their own (127.0.0.1 by default), away from the clients.
//
// Plain `node:http` whichever server serves the clients: Prometheus and probes send a few requests a minute. Each relay
// process needs a METRICS_PORT of its own (no SO_REUSEPORT here), so that a scrape always reaches the same process.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PgRelayError } from '../db/errors.js';
import { copiedRequest, internalError } from './server/http-request.js';
import type { HttpHandler, HttpReply } from './server/server.js';

const notFound: HttpReply = { status: 404, headers: { 'content-type': 'application/json' }, body: '{"error":"not_found"}' };

/** A running metrics listener. */
export interface MetricsListener {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `GET <path>` with `routes[path]` on `host:port`; rejects with `port_unavailable` naming METRICS_PORT. */
export function startMetricsListener(host: string, port: number, routes: Readonly<Record<string, HttpHandler>>): Promise<MetricsListener> {
  const server = http.createServer((req, res) => {
    req.resume();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const headers = new Map<string, string>();
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!.toLowerCase();
      if (!headers.has(name)) headers.set(name, req.rawHeaders[i + 1]!);
    }
    const handler = req.method === 'GET' ? routes[path] : undefined;
    const write = (reply: HttpReply) => {
      if (res.destroyed || res.writableEnded) return;
      res.writeHead(reply.status, reply.headers);
      res.end(reply.body);
    };
    if (!handler) return write(notFound);
    Promise.resolve()
      .then(() => handler(copiedRequest('GET', path, q < 0 ? '' : url.slice(q + 1), headers, req.socket.remoteAddress ?? '')))
      .then(write, () => write(internalError));
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
