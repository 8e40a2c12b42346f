// The probes and Prometheus's page: /healthz, /readyz and /metrics on the clients' port, and the same three for METRICS_PORT.
import type { ChangeFeed } from '../feed/change-feed.js';
import type { RelayConfig } from '../ops/relay-config.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { HttpHandler, RelayServer, ServerInfo } from '../server/server.js';
import { json } from './http-routes.js';
import { clientPortMetrics, clientPortMetricsHandler, metricsHandler, metricsRefusedWarning } from './metrics-access.js';

/** What {@link registerHealthRoutes} needs from the relay. */
export interface HealthRoutesOptions {
  /** The server in use, named in every /healthz answer. */
  info: ServerInfo;
  /** Ready once caught up with the change log; /readyz answers 503 until then. */
  feed: Pick<ChangeFeed, 'ready' | 'position'>;
  config: Pick<RelayConfig, 'host' | 'metricsPort' | 'metricsToken'>;
  metrics: Metrics;
  log: Logger;
}

/**
 * Routes `GET /healthz`, `GET /readyz` and (as {@link clientPortMetrics} decides) `GET /metrics` on the clients' port,
 * warning at once when /metrics is refused there; returns the routes a METRICS_PORT listener serves.
 */
export function registerHealthRoutes(server: RelayServer, o: HealthRoutesOptions): ReadonlyMap<string, HttpHandler> {
  const { info, feed, config } = o;
  const health = { status: 'ok', server: { impl: info.impl, package: info.package, version: info.version, chosen: info.chosen } };
  const healthz = () => json(200, health);
  const readyz = () => feed.ready
    ? json(200, { status: 'ready', position: feed.position })
    : json(503, { status: 'catching_up', position: feed.position });
  server.route('GET', '/healthz', healthz);
  server.route('GET', '/readyz', readyz);
  // /metrics is for Prometheus only (issue 25, relay/console/metrics-access.ts): behind RELAY_METRICS_TOKEN, or on METRICS_PORT
  const metricsMode = clientPortMetrics(config);
  const clientMetrics = clientPortMetricsHandler(metricsMode, o.metrics, config.metricsToken);
  if (clientMetrics) server.route('GET', '/metrics', clientMetrics);
  if (metricsMode === 'refused') o.log.warn({ host: config.host }, metricsRefusedWarning);
  return new Map([['/metrics', metricsHandler(o.metrics, config.metricsToken)], ['/healthz', healthz], ['/readyz', readyz]]);
}
