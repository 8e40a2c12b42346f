// The relay process: one server (native uWebSockets.js or the ws fallback) wiring the change feed, ring, router and sockets together.
import type pg from 'pg';
import { createKysely, createPool, type RelayDb } from '../db/kysely.js';
import { WAKE_CHANNEL, type TickerPacing } from '../db/ticker/ticker-options.js';
import type { RelayConfig } from './ops/relay-config.js';
import { startHousekeeping } from './ops/housekeeping.js';
import type { Logger } from './ops/log.js';
import { createMetrics, type Metrics } from './ops/metrics.js';
import { Pruner } from './ops/pruner.js';
import { ReadinessLog } from './ops/readiness-log.js';
import { chooseServer, logServer, type ServerPlan } from './server/choose-server.js';
import type { ServerInfo } from './server/server.js';
import { ChangeFeed } from './feed/change-feed.js';
import { orderTx } from './feed/column-order.js';
import { pgListenSession, type ListenSession } from './feed/listen-session.js';
import { RingBuffer } from './feed/ring-buffer.js';
import { startTickerCandidate } from './feed/ticker-candidate.js';
import { unwatchedTable, WatchedTables } from './feed/watched-tables.js';
import { createTokenVerifier } from './routing/auth.js';
import { Router } from './routing/router.js';
import { SocketWriter } from './routing/socket-writer.js';
import { Subscriptions } from './routing/subscriptions.js';
import { Presence } from './presence/presence.js';
import { Connections } from './edge/connections.js';
import { createMessageHandler } from './edge/messages.js';
import { Refusals } from './edge/refusals.js';
import { createStreamAccept } from './edge/sse.js';
import { registerEventStream } from './edge/sse-endpoint.js';
import { createUpgradeHandler } from './edge/upgrade.js';
import { registerWebSocket } from './edge/websocket-endpoint.js';
import { loadConsoleFiles } from './console/console-page.js';
import { DevConsole, type DevMode } from './console/dev-console.js';
import { registerHealthRoutes } from './console/health-routes.js';
import { json, registerHttpRoutes } from './console/http-routes.js';
import { startMetricsListener, type MetricsListener } from './console/metrics-listener.js';
import { relayStats } from './console/relay-stats.js';

/** What {@link startRelay} needs: the configuration (with a database URL and a way to verify tokens) and a logger. */
export interface RelayOptions {
  config: RelayConfig & { databaseUrl: string };
  log: Logger;
  /** A LISTEN session to use instead of pg-listen on `databaseUrl` (tests use it to reach edge cases). */
  session?: ListenSession;
  /** How the ticker paces itself, when this relay is the ticker (benchmarks compare settings). */
  tickerPacing?: Partial<TickerPacing>;
  /** Embedded development mode (`npm start` without DATABASE_URL): the console may mint dev tokens for localhost. */
  dev?: DevMode;
  /** The server to run on, when already chosen (`pgrelay start` chooses before it starts Postgres). Default: `chooseServer(config.server)`. */
  server?: ServerPlan;
}

/** A running relay. */
export interface Relay {
  /** The bound port. */
  readonly port: number;
  /** The bound port of the METRICS_PORT listener, when there is one. */
  readonly metricsPort: number | undefined;
  /** The server in use: native uWebSockets.js or the ws fallback, and why. */
  readonly server: ServerInfo;
  readonly metrics: Metrics;
  /** Last transaction seq processed. */
  readonly position: number;
  /** This relay holds the ticker lock and numbers transactions for the database. */
  readonly ticker: boolean;
  /** Open WebSocket connections. */
  readonly connections: number;
  /** Names of the watched tables (`schema.table`). */
  readonly watched: readonly string[];
  /** Stops accepting, closes every socket with 1001, closes the LISTEN session and the pool. */
  close(): Promise<void>;
}

export async function startRelay(options: RelayOptions): Promise<Relay> {
  const { config, log } = options;
  const plan = options.server ?? chooseServer(config.server);
  logServer(log, plan.info);
  const metrics = createMetrics();
  metrics.server.set({ impl: plan.info.impl, package: plan.info.package, version: plan.info.version, chosen: plan.info.chosen }, 1);
  const pool: pg.Pool = createPool(config.databaseUrl, { max: 10, applicationName: 'pgrelay' });
  const db: RelayDb = createKysely(pool);
  const tables = new WatchedTables(db);
  await tables.reload();

  const server = plan.create();
  const io = new SocketWriter(metrics, log);
  const ring = new RingBuffer(config.historyTx, config.historyBytes, 0);
  const router = new Router(server, tables, config.maxFrame, metrics);
  // relay_wake too: the ticker's wake-ups come through this session (see TickerOptions.listen)
  const session = options.session ?? pgListenSession(config.databaseUrl, ['relay', 'relay_config', 'relay_presence', WAKE_CHANNEL]);
  const wakesThroughSession = options.session === undefined;
  const feed = new ChangeFeed({
    db,
    session,
    log,
    metrics,
    historyTx: config.historyTx,
    historyBytes: config.historyBytes,
    onStart: (from) => ring.reset(from),
    onTransaction: (logged) => {
      const tx = orderTx(logged, tables);
      ring.push(tx);
      metrics.ringTransactions.set(ring.size);
      metrics.ringBytes.set(ring.bytes);
      router.publish(tx);
    },
    onConfig: () => {
      tables.reload().catch((err: unknown) => log.error({ err }, 'reloading watched tables failed'));
    },
  });
  const subscriptions = new Subscriptions({
    db, pool, feed, ring, router, tables, io, metrics, log,
    maxSubscriptions: config.maxSubscriptions, maxFrame: config.maxFrame, maxBackpressure: config.maxBackpressure,
    // after the frame that says why (a reset, an error), in the same turn
    ended: (ws) => queueMicrotask(() => io.end(ws, 1000, 'subscription ended')),
  });
  // Presence (issue 14, relay/presence/): members per tenant, shared with the other relays through Postgres.
  const presence = new Presence({ pool, publish: (topic, frame) => server.publish(topic, frame), io, log, metrics, ttlMs: config.presenceTtlMs });
  const connections = new Connections({ feed, subscriptions, presence, io, metrics, maxBackpressure: config.maxBackpressure });
  // relay.unwatch says which table it stopped capturing: its subscribers are told at once, not left waiting forever.
  session.onNotification((channel, payload) => {
    if (channel !== 'relay_config') return;
    const table = unwatchedTable(payload);
    if (table === undefined) return;
    tables.forget(table);
    subscriptions.unwatched(connections.sockets, table);
    log.info({ table }, 'table unwatched; its subscribers were reset');
  });
  session.onNotification((channel, payload) => channel === 'relay_presence' && presence.notified(payload));
  session.onState((state) => state === 'connected' && presence.reconnected());
  const verifier = createTokenVerifier(config);
  const refusals = new Refusals(log);

  const probes = registerHealthRoutes(server, { info: plan.info, feed, config, metrics, log });
  registerHttpRoutes(server, {
    verifier, tables, metrics, refusals, log,
    files: loadConsoleFiles(),
    stats: () => relayStats(connections.sockets, feed.position),
    dev: options.dev ? new DevConsole(options.dev, config.databaseUrl, tables, { tenantClaim: config.tenantClaim, audience: config.jwtAudience, issuer: config.jwtIssuer }) : undefined,
  });
  registerWebSocket(server, {
    config, connections, io, metrics,
    upgrade: createUpgradeHandler({ verifier, allowedOrigins: config.allowedOrigins, rateLimit: config.rateLimit, metrics, log, refusals }),
    message: createMessageHandler({ rateLimit: config.rateLimit, maxMessage: config.maxMessage, io, subscriptions, presence, verifier, metrics, log }),
  });
  registerEventStream(server, {
    config, connections, subscriptions, presence, io, log,
    accept: createStreamAccept({ verifier, allowedOrigins: config.allowedOrigins, rateLimit: config.rateLimit, subscriptions, metrics, log, refusals }),
  });
  server.fallback(() => json(404, { error: 'not_found' }, {}));

  // Every relay is a ticker candidate; the one holding the lock numbers transactions for all (see db/ticker/).
  const ticker = startTickerCandidate({ databaseUrl: config.databaseUrl, log, metrics, pacing: options.tickerPacing, session, feed, wakesThroughSession });
  let port: number;
  let metricsListener: MetricsListener | undefined;
  try {
    await feed.start();
    if (config.metricsPort !== undefined) {
      metricsListener = await startMetricsListener(config.metricsHost, config.metricsPort, probes);
    }
    port = await server.listen(config.host, config.port, { reusePort: config.reusePort });
  } catch (err) {
    await metricsListener?.close();
    await ticker.close();
    await feed.close();
    await db.destroy();
    throw err;
  }
  if (metricsListener) {
    log.info({ host: config.metricsHost, port: metricsListener.port, bearer: config.metricsToken !== undefined }, `metrics on http://${config.metricsHost}:${metricsListener.port}/metrics${config.metricsToken ? ' (bearer token required)' : ''}`);
  }
  // Housekeeping (relay/ops/housekeeping.ts): a log line when readiness changes, then one pass over the sockets.
  const readiness = new ReadinessLog(feed, log);
  readiness.check();
  const stopHousekeeping = startHousekeeping([() => readiness.check(), () => connections.sweep()]);
  const pruner = new Pruner(pool, config.retention, config.pruneIntervalMs, log);
  pruner.start();
  presence.start();

  let closing: Promise<void> | undefined;
  return {
    port,
    metricsPort: metricsListener?.port,
    server: plan.info,
    metrics,
    get position() {
      return feed.position;
    },
    get connections() {
      return connections.sockets.size;
    },
    get ticker() {
      return ticker.leader;
    },
    get watched() {
      return tables.names();
    },
    close() {
      closing ??= (async () => {
        stopHousekeeping();
        pruner.stop();
        server.close();
        connections.endAll();
        await metricsListener?.close();
        await presence.close();
        await ticker.close();
        await feed.close();
        await db.destroy();
      })();
      return closing;
    },
  };
}
