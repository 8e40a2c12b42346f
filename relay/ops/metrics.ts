// Prometheus metrics (prom-client) on a registry of the relay's own: pgrelay's are named pgrelay_*, the process's keep the standard process_* / nodejs_* names.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  // No prefix: the usual Node.js dashboards and alerts look for process_cpu_user_seconds_total, nodejs_heap_size_used_bytes…
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 1000 });
  const m = {
    registry,
    connections: new Gauge({ name: 'pgrelay_connections', help: 'Open connections by transport: websocket, or sse (Server-Sent Events streams).', labelNames: ['transport'], registers: [registry] }),
    subscriptions: new Gauge({ name: 'pgrelay_subscriptions', help: 'Active subscriptions by table.', labelNames: ['table'], registers: [registry] }),
    transactions: new Counter({ name: 'pgrelay_transactions_received_total', help: 'Committed transactions received from Postgres.', registers: [registry] }),
    frames: new Counter({ name: 'pgrelay_frames_published_total', help: 'Frames serialized and published (one per transaction and subscription group).', registers: [registry] }),
    deliveries: new Counter({ name: 'pgrelay_deliveries_total', help: 'Frames delivered to sockets (frames times subscribers).', registers: [registry] }),
    lag: new Histogram({
      name: 'pgrelay_commit_to_send_seconds', help: 'Time from commit (database clock) to publish.',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry],
    }),
    replays: new Counter({ name: 'pgrelay_replays_total', help: 'Resumed subscriptions by where their history came from.', labelNames: ['source'], registers: [registry] }),
    subscriptionRetries: new Counter({ name: 'pgrelay_subscription_retries_total', help: 'Snapshots and resumes tried again because the database went away while serving them.', registers: [registry] }),
    resets: new Counter({ name: 'pgrelay_resets_total', help: 'Subscriptions told to refetch, by reason.', labelNames: ['reason'], registers: [registry] }),
    authFailures: new Counter({ name: 'pgrelay_auth_failures_total', help: 'Refused tokens by reason.', labelNames: ['reason'], registers: [registry] }),
    closes: new Counter({ name: 'pgrelay_closes_total', help: 'Sockets the relay closed, by close code (4001 expired, 4003 tenant mismatch, 4008 backpressure, 4009 abuse, 4029 rate, 1001 shutdown, 1009 too big).', labelNames: ['code'], registers: [registry] }),
    backpressureBuffered: new Histogram({
      name: 'pgrelay_backpressure_close_buffered_bytes', help: 'Bytes a socket had buffered when it was closed for falling behind (4008).',
      buckets: [64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024, 16 * 1024 * 1024, 64 * 1024 * 1024], registers: [registry],
    }),
    backpressureCloses: new Counter({ name: 'pgrelay_backpressure_closes_total', help: 'Sockets closed for falling behind (4008).', registers: [registry] }),
    protocolErrors: new Counter({ name: 'pgrelay_protocol_errors_total', help: 'Error frames sent, by code.', labelNames: ['code'], registers: [registry] }),
    presenceSockets: new Gauge({ name: 'pgrelay_presence_sockets', help: 'Sockets of this relay in the presence of their tenant.', registers: [registry] }),
    presenceStatements: new Counter({ name: 'pgrelay_presence_statements_total', help: 'Presence statements run: sync (a batch of joins and leaves, or the heartbeat), read (members of the tenants that changed), sweep (expired relays).', labelNames: ['kind'], registers: [registry] }),
    listenerReconnects: new Counter({ name: 'pgrelay_listener_reconnects_total', help: 'LISTEN session reconnections.', registers: [registry] }),
    gapReads: new Counter({ name: 'pgrelay_gap_reads_total', help: 'Reads of the log to fill a gap or a reference payload.', labelNames: ['kind'], registers: [registry] }),
    position: new Gauge({ name: 'pgrelay_position', help: 'Last transaction seq processed.', registers: [registry] }),
    ringTransactions: new Gauge({ name: 'pgrelay_ring_transactions', help: 'Transactions held in the ring.', registers: [registry] }),
    ringBytes: new Gauge({ name: 'pgrelay_ring_bytes', help: 'Approximate bytes held in the ring.', registers: [registry] }),
    ready: new Gauge({ name: 'pgrelay_ready', help: '1 when the LISTEN session is connected and caught up.', registers: [registry] }),
    tickerLeader: new Gauge({ name: 'pgrelay_ticker_leader', help: '1 while this relay is the ticker (numbers transactions for the database).', registers: [registry] }),
    tickerAsleep: new Gauge({ name: 'pgrelay_ticker_asleep', help: '1 while this relay is the ticker and sleeps on LISTEN (the log is quiet; the first writer wakes it).', registers: [registry] }),
    tickerStatements: new Counter({ name: 'pgrelay_ticker_statements_total', help: "Statements this relay's ticker session sent (ticks, sleep flags, lock attempts): about 1 a second at rest.", registers: [registry] }),
    tickBatch: new Histogram({
      name: 'pgrelay_tick_transactions', help: 'Transactions numbered per tick (ticks that numbered any).',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], registers: [registry],
    }),
    tickSeconds: new Histogram({
      name: 'pgrelay_tick_seconds', help: 'Duration of ticks that numbered transactions (read, number, NOTIFY, commit).',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry],
    }),
    server: new Gauge({
      name: 'pgrelay_server_info', help: 'The server in use (1): impl uws (native uWebSockets.js) or ws (the fallback), its package and version, chosen auto or forced by RELAY_SERVER.',
      labelNames: ['impl', 'package', 'version', 'chosen'], registers: [registry],
    }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
