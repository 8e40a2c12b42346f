// Issue 25: /metrics for Prometheus only (RELAY_METRICS_TOKEN, METRICS_PORT) on both servers, in Prometheus's text format as before; /healthz and /readyz stay open.
import http from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../client/shared/errors.js';
import { createOrders, leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { loadConfig } from '../ops/config.js';
import { clientPortMetrics } from '../console/metrics-access.js';
import { httpGet, startTestRelay, type TestRelay } from './support/relay-harness.js';
import { nativeLoads } from './support/server-under-test.js';

const db = useTestDatabase();
const TOKEN = 'prometheus-scrape-token-0123456789';

beforeAll(async () => {
  await createOrders(db);
});
leakGuard(() => db.name);

/** GET with headers, on a connection of its own. */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false, headers: { connection: 'close', ...headers } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    }).on('error', reject);
  });
}

/**
 * Checks `text` line by line against Prometheus's text exposition format 0.0.4 and returns each family's type:
 * `# HELP name …`, `# TYPE name type`, samples `name{label="value",…} number`, a family's samples after its TYPE.
 */
function families(text: string): Map<string, string> {
  const types = new Map<string, string>();
  const bad: string[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m: RegExpExecArray | null;
    if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*$/.exec(line))) continue;
    if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      types.set(m[1]!, m[2]!);
      current = m[1]!;
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (\S+)$/.exec(line);
    // a value as Prometheus parses it (Go's ParseFloat: NaN and Inf in any case; prom-client writes NaN as "Nan")
    const value = m?.[5] ?? '';
    const number = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(value) || /^[-+]?(nan|inf)$/i.test(value);
    // a histogram's samples are its name with _bucket, _sum and _count
    if (!m || !number || !(m[1] === current || m[1]!.replace(/_(bucket|sum|count)$/, '') === current)) bad.push(line);
  }
  expect(bad).toEqual([]);
  return types;
}

const servers = nativeLoads() ? (['uws', 'ws'] as const) : (['ws'] as const);

describe.each(servers)('/metrics for Prometheus only (RELAY_SERVER=%s)', (impl) => {
  let open: TestRelay;
  let withToken: TestRelay;
  let ownPort: TestRelay;
  let ownPortWithToken: TestRelay;
  let baseline: Map<string, string>;

  beforeAll(async () => {
    // HOST 127.0.0.1 and neither setting: the clients' port serves it as before (only this machine reaches it)
    open = await startTestRelay(db, { RELAY_SERVER: impl });
    withToken = await startTestRelay(db, { RELAY_SERVER: impl, RELAY_METRICS_TOKEN: TOKEN });
    ownPort = await startTestRelay(db, { RELAY_SERVER: impl, METRICS_PORT: '0' });
    ownPortWithToken = await startTestRelay(db, { RELAY_SERVER: impl, METRICS_PORT: '0', RELAY_METRICS_TOKEN: TOKEN });
    const r = await get(`${open.http}/metrics`);
    expect(r.status).toBe(200);
    baseline = families(r.body);
    expect(open.server.impl).toBe(impl);
  });

  it('RELAY_METRICS_TOKEN: the clients\' port refuses a scrape without the token, or with another one, or as Basic auth', async () => {
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer nope' }, { authorization: `Bearer ${TOKEN}x` }, { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` }, { authorization: TOKEN }]) {
      const r = await get(`${withToken.http}/metrics`, headers);
      expect(r.status, JSON.stringify(headers)).toBe(401);
      expect(r.headers['www-authenticate']).toBe('Bearer realm="pgrelay metrics"');
      expect(JSON.parse(r.body)).toEqual({ error: 'unauthorized', message: 'Send the RELAY_METRICS_TOKEN as Authorization: Bearer <token>.' });
      expect(r.body).not.toContain('pgrelay_');
    }
  });

  it('RELAY_METRICS_TOKEN: with the token (as Prometheus\'s authorization setting sends it) the text format and the families are as before', async () => {
    const r = await get(`${withToken.http}/metrics`, { authorization: `Bearer ${TOKEN}` });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(families(r.body)).toEqual(baseline);
    expect(baseline.get('pgrelay_server_info')).toBe('gauge');
    expect(baseline.get('pgrelay_commit_to_send_seconds')).toBe('histogram');
    expect(r.body).toMatch(new RegExp(`^pgrelay_server_info\\{impl="${impl}",`, 'm'));
  });

  it('METRICS_PORT: not served on the clients\' port at all; served on its own port (127.0.0.1) in the same format', async () => {
    expect(ownPort.metricsPort).toBeGreaterThan(0);
    expect(ownPort.metricsPort).not.toBe(ownPort.port);
    expect(await httpGet(`${ownPort.http}/metrics`)).toMatchObject({ status: 404, body: '{"error":"not_found"}' });
    const r = await get(`http://127.0.0.1:${ownPort.metricsPort}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(families(r.body)).toEqual(baseline);
    // probes may use either port; nothing else is served there
    expect(JSON.parse((await get(`http://127.0.0.1:${ownPort.metricsPort}/healthz`)).body)).toMatchObject({ status: 'ok', server: { impl } });
    expect(JSON.parse((await get(`http://127.0.0.1:${ownPort.metricsPort}/readyz`)).body)).toMatchObject({ status: 'ready' });
    expect((await get(`http://127.0.0.1:${ownPort.metricsPort}/`)).status).toBe(404);
    expect((await get(`http://127.0.0.1:${ownPort.metricsPort}/api/tables`)).status).toBe(404);
  });

  it('METRICS_PORT with RELAY_METRICS_TOKEN: the token is required there too', async () => {
    expect((await get(`http://127.0.0.1:${ownPortWithToken.metricsPort}/metrics`)).status).toBe(401);
    const r = await get(`http://127.0.0.1:${ownPortWithToken.metricsPort}/metrics`, { authorization: `bearer ${TOKEN}` });
    expect(r.status).toBe(200);
    expect(families(r.body)).toEqual(baseline);
    expect((await httpGet(`${ownPortWithToken.http}/metrics`)).status).toBe(404);
  });

  it('/healthz and /readyz stay open on the clients\' port whatever protects /metrics', async () => {
    for (const relay of [withToken, ownPort, ownPortWithToken]) {
      expect((await get(`${relay.http}/healthz`)).status).toBe(200);
      expect((await get(`${relay.http}/readyz`)).status).toBe(200);
    }
  });
});

describe('where /metrics is served on the clients\' port', () => {
  it('open only while HOST is loopback and neither setting is given; refused on any other HOST', () => {
    const at = (host: string, extra: { metricsPort?: number; metricsToken?: string } = {}) => clientPortMetrics({ host, metricsPort: undefined, metricsToken: undefined, ...extra });
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '::ffff:127.0.0.1']) expect(at(host), host).toBe('open');
    for (const host of ['0.0.0.0', '::', '10.0.0.5', 'relay.internal', '192.168.1.20', '127.0.0.1.example.com']) expect(at(host), host).toBe('refused');
    expect(at('0.0.0.0', { metricsToken: TOKEN })).toBe('token');
    expect(at('127.0.0.1', { metricsToken: TOKEN })).toBe('token');
    expect(at('0.0.0.0', { metricsPort: 9464 })).toBe('elsewhere');
    expect(at('0.0.0.0', { metricsPort: 9464, metricsToken: TOKEN })).toBe('elsewhere');
  });
});

describe('the settings, checked at start-up', () => {
  it('METRICS_HOST defaults to 127.0.0.1; flags win as for every setting', () => {
    const c = loadConfig({ DATABASE_URL: 'postgres://relay@db.internal/app', METRICS_PORT: '9464', RELAY_METRICS_TOKEN: TOKEN });
    expect(c).toMatchObject({ metricsPort: 9464, metricsHost: '127.0.0.1', metricsToken: TOKEN });
    expect(loadConfig({}, ['--metrics-port', '9465', '--metrics-host', '10.0.0.5'])).toMatchObject({ metricsPort: 9465, metricsHost: '10.0.0.5', metricsToken: undefined });
    expect(loadConfig({})).toMatchObject({ metricsPort: undefined, metricsToken: undefined });
  });

  it.each([
    [{ METRICS_PORT: '8080' }, 'METRICS_PORT is 8080, the port of the clients (PORT); give the metrics a port of their own, or leave METRICS_PORT unset and set RELAY_METRICS_TOKEN.'],
    [{ PORT: '9000', METRICS_PORT: '9000' }, 'METRICS_PORT is 9000, the port of the clients (PORT); give the metrics a port of their own, or leave METRICS_PORT unset and set RELAY_METRICS_TOKEN.'],
    [{ METRICS_PORT: 'nine' }, 'METRICS_PORT must be a TCP port number from 0 to 65535; got "nine".'],
    [{ METRICS_HOST: 'a b' }, 'METRICS_HOST must be a host name or IP address to listen on; got "a b".'],
    [{ RELAY_METRICS_TOKEN: 'short-secret' }, 'RELAY_METRICS_TOKEN must be at least 16 printable characters with no spaces (Prometheus sends it as Authorization: Bearer <token>); got (value hidden).'],
    [{ RELAY_METRICS_TOKEN: 'a token with spaces in it' }, 'RELAY_METRICS_TOKEN must be at least 16 printable characters with no spaces (Prometheus sends it as Authorization: Bearer <token>); got (value hidden).'],
  ])('%j is refused with one sentence', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('PORT 0 and METRICS_PORT 0 both pick free ports: not a clash', () => {
    expect(loadConfig({ PORT: '0', METRICS_PORT: '0' })).toMatchObject({ port: 0, metricsPort: 0 });
  });
});
