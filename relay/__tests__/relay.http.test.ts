// The HTTP side: health, readiness, metrics, the console page, 404s, and a graceful SIGTERM.
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../client/shared/free-port.js';
import { createOrders, leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { relayEnv, runCli } from './support/cli-process.js';
import { connect, httpGet, metric, startTestRelay, token, type TestRelay } from './support/relay-harness.js';
import { expectedServer } from './support/server-under-test.js';

const db = useTestDatabase();
let relay: TestRelay;

beforeAll(async () => {
  await createOrders(db);
  relay = await startTestRelay(db);
});
leakGuard(() => db.name);

describe('HTTP endpoints', () => {
  it('/healthz, /readyz, /metrics, / and 404', async () => {
    const health = await httpGet(`${relay.http}/healthz`);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok' });
    const ready = await httpGet(`${relay.http}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ status: 'ready', position: expect.any(Number) });
    const metrics = await httpGet(`${relay.http}/metrics`);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    for (const name of ['pgrelay_connections', 'pgrelay_subscriptions', 'pgrelay_transactions_received_total', 'pgrelay_frames_published_total',
      'pgrelay_deliveries_total', 'pgrelay_commit_to_send_seconds', 'pgrelay_replays_total', 'pgrelay_resets_total', 'pgrelay_auth_failures_total',
      'pgrelay_backpressure_closes_total', 'pgrelay_listener_reconnects_total', 'pgrelay_ready', 'pgrelay_server_info']) {
      expect(metrics.body).toContain(`# TYPE ${name} `);
    }
    const page = await httpGet(`${relay.http}/`);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.body).toContain('<title>pgrelay console</title>');
    expect(await httpGet(`${relay.http}/nope`)).toMatchObject({ status: 404, body: '{"error":"not_found"}' });
  });
});

describe('issue 16: the server implementation', () => {
  it('is the one the run asks for (RELAY_SERVER, else native where it loads), named in /healthz and /metrics', async () => {
    const impl = expectedServer();
    expect(relay.server.impl).toBe(impl);
    const { server } = JSON.parse((await httpGet(`${relay.http}/healthz`)).body) as { server: Record<string, string> };
    expect(server).toEqual({ impl, package: relay.server.package, version: relay.server.version, chosen: process.env.RELAY_SERVER ? 'forced' : 'auto' });
    expect(server.package).toMatch(impl === 'ws' ? /^ws$/ : /uwebsockets\.js$/i);
    const text = (await httpGet(`${relay.http}/metrics`)).body;
    expect(metric(text, 'pgrelay_server_info', `{impl="${impl}",package="${server.package}",version="${server.version}",chosen="${server.chosen}"}`)).toBe(1);
  });
});

describe('SIGTERM', () => {
  it('closes sockets with 1001 and exits 0 within 5 s', async () => {
    const port = await freePort();
    const p = runCli(['start'], relayEnv(db, port));
    try {
      await p.waitFor(/pgrelay listening on/);
      const c = await connect(`ws://127.0.0.1:${port}/ws`, await token({ tenant_id: 'a' }));
      const t0 = Date.now();
      p.signal('SIGTERM');
      expect(await c.closed).toEqual({ code: 1001, reason: 'relay shutting down' });
      expect(await p.exited).toBe(0);
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      p.signal('SIGKILL');
      await p.exited;
    }
  });
});

describe('issue 12: process metrics', () => {
  it('keep the standard process_* and nodejs_* names that Node.js dashboards use', async () => {
    const { body } = await httpGet(`${relay.http}/metrics`);
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(body).toContain(`# TYPE ${name} `);
    }
    expect(body).not.toMatch(/^# TYPE pgrelay_process_/m);
  });
});
