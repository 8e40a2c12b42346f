// Who may read /metrics: Prometheus with RELAY_METRICS_TOKEN, or whoever reaches the METRICS_PORT listener, never any client of the relay.
import { timingSafeEqual } from 'node:crypto';
import type { RelayConfig } from '../ops/relay-config.js';
import { json } from './http-routes.js';
import type { Metrics } from '../ops/metrics.js';
import type { HttpHandler, HttpReply } from '../server/server.js';

/** Where `/metrics` is served on the clients' port (`PORT`), and why. */
export type ClientPortMetrics =
  /** `METRICS_PORT` is set: the clients' port does not serve it at all (404). */
  | 'elsewhere'
  /** `RELAY_METRICS_TOKEN` is set: only requests that carry it. */
  | 'token'
  /** Neither, and `HOST` is loopback: only this machine reaches the port (development, or a relay with a local agent). */
  | 'open'
  /** Neither, and other machines reach `HOST`: refused, with what to set. */
  | 'refused';

/** 127.0.0.0/8, ::1 and localhost: addresses no other machine can connect to. */
export function isLoopbackHost(host: string): boolean {
  return /^(localhost|127(\.\d{1,3}){3}|::1|::ffff:127(\.\d{1,3}){3})$/i.test(host);
}

export function clientPortMetrics(config: Pick<RelayConfig, 'host' | 'metricsPort' | 'metricsToken'>): ClientPortMetrics {
  if (config.metricsPort !== undefined) return 'elsewhere';
  if (config.metricsToken !== undefined) return 'token';
  return isLoopbackHost(config.host) ? 'open' : 'refused';
}

/** The start-up warning for {@link ClientPortMetrics} `refused`: the one case an operator must act on. */
export const metricsRefusedWarning =
  '/metrics is not served: HOST is reachable from other machines and neither RELAY_METRICS_TOKEN (Prometheus sends it as a bearer token) nor METRICS_PORT (a listener of its own, on 127.0.0.1 by default) is set';

const refusedReply = json(403, {
  error: 'metrics_protected',
  message: 'Set RELAY_METRICS_TOKEN (and send it as Authorization: Bearer) or METRICS_PORT to read /metrics from another machine.',
});

/**
 * The `/metrics` handler: the registry in Prometheus's text format, behind `token` when one is given (compared in
 * constant time; a missing or wrong token gets 401 with `WWW-Authenticate`, as RFC 6750 says).
 */
export function metricsHandler(metrics: Metrics, token: string | undefined): HttpHandler {
  const expected = token === undefined ? undefined : Buffer.from(token);
  return async (req) => {
    if (expected && !bearerMatches(req.header('authorization'), expected)) {
      return json(401, { error: 'unauthorized', message: 'Send the RELAY_METRICS_TOKEN as Authorization: Bearer <token>.' }, { 'www-authenticate': 'Bearer realm="pgrelay metrics"', 'cache-control': 'no-store' });
    }
    return scrape(metrics);
  };
}

/** What the clients' port answers on `/metrics` under `mode` (undefined: not routed there, the 404 fallback answers). */
export function clientPortMetricsHandler(mode: ClientPortMetrics, metrics: Metrics, token: string | undefined): HttpHandler | undefined {
  if (mode === 'elsewhere') return undefined;
  if (mode === 'refused') return () => refusedReply;
  return metricsHandler(metrics, mode === 'token' ? token : undefined);
}

function bearerMatches(header: string, expected: Buffer): boolean {
  const given = Buffer.from(/^bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function scrape(metrics: Metrics): Promise<HttpReply> {
  try {
    return { status: 200, headers: { 'content-type': metrics.registry.contentType }, body: await metrics.registry.metrics() };
  } catch {
    return json(500, { error: 'metrics' });
  }
}
