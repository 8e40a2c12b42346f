// Refused tokens explained in-band (issue 13): a client offering pgrelay.reasons gets a socket closed at once with 4401/4403 and the
// reason; others keep the plain HTTP 401; every refusal is logged at info, rate-limited, without the token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrders, leakGuard, sleep, useTestDatabase } from '../../db/testing/index.js';
import { loadConfig } from '../ops/config.js';
import { createLogger } from '../ops/log.js';
import { Refusals } from '../edge/refusals.js';
import { startRelay, type Relay } from '../relay.js';
import { connect, httpGet, metric, refused, SECRET, token } from './support/relay-harness.js';
import { serverEnv } from './support/server-under-test.js';

const db = useTestDatabase();
const lines: Array<Record<string, unknown>> = [];
const raw: string[] = [];
let relay: Relay;
let url: string;

beforeAll(async () => {
  await createOrders(db);
  const config = loadConfig({ DATABASE_URL: db.relayUrl, PORT: '0', HOST: '127.0.0.1', RELAY_JWT_SECRET: SECRET, RELAY_JWT_AUDIENCE: 'dashboards', RELAY_ALLOWED_ORIGINS: 'https://app.example', ...serverEnv });
  const log = createLogger('info', { write: (l) => void (raw.push(l), lines.push(JSON.parse(l) as Record<string, unknown>)) });
  relay = await startRelay({ config: { ...config, databaseUrl: db.relayUrl }, log });
  url = `ws://127.0.0.1:${relay.port}/ws`;
});
afterAll(() => relay.close());
leakGuard(() => db.name);

const withReasons = (t: string) => ({ protocols: ['pgrelay.v1', 'pgrelay.reasons', `bearer.${t}`] });
const refusalLines = () => lines.filter((l) => String(l.msg).startsWith('refused a WebSocket upgrade'));

describe('a client offering pgrelay.reasons', () => {
  it.each([
    ['a wrong signature', () => token({ tenant_id: 'a', aud: 'dashboards' }, { secret: 'another-secret-another-secret-another-secret' }), 'token signature invalid'],
    ['an expired token', () => token({ tenant_id: 'a', aud: 'dashboards' }, { expiresIn: Math.floor(Date.now() / 1000) - 60 }), 'token expired'],
    ['a wrong audience', () => token({ tenant_id: 'a', aud: 'other' }), 'token audience not accepted'],
    ['no tenant claim', () => token({ sub: 'u1', aud: 'dashboards' }), 'token has no tenant_id claim'],
    ['a malformed token', async () => 'not-a-jwt', 'malformed token'],
  ])('learns why %s was refused: 4401 and the reason, no welcome, no connection counted', async (_name, make, reason) => {
    const c = await connect(url, null, withReasons(await make()));
    expect(c.ws.protocol).toBe('pgrelay.v1');
    expect(await c.closed).toEqual({ code: 4401, reason });
    expect(c.frames).toEqual([]);
    expect(relay.connections).toBe(0);
  });

  it('learns that its origin is not allowed: 4403', async () => {
    const c = await connect(url, null, { ...withReasons(await token({ tenant_id: 'a', aud: 'dashboards' })), origin: 'https://evil.example' });
    expect(await c.closed).toEqual({ code: 4403, reason: 'origin not allowed' });
  });

  it('with a good token is served as usual', async () => {
    const c = await connect(url, null, withReasons(await token({ tenant_id: 'a', aud: 'dashboards' })));
    expect(await c.next((f) => f.type === 'welcome')).toMatchObject({ tenant: 'a' });
    await c.close();
  });
});

describe('a client that does not offer pgrelay.reasons', () => {
  it('still gets HTTP 401 with the reason and no socket', async () => {
    expect(await refused(url, await token({ tenant_id: 'a', aud: 'other' }))).toEqual({ status: 401, body: 'token audience not accepted' });
  });
});

describe('the refusal log', () => {
  it('writes one info line per reason per window, with a count, and never the token', async () => {
    const before = refusalLines().length;
    const bad = await token({ tenant_id: 'a', aud: 'dashboards' }, { secret: 'yet-another-secret-yet-another-secret-0000' });
    for (let i = 0; i < 5; i++) {
      const c = await connect(url, null, withReasons(bad));
      await c.closed;
    }
    const metrics = (await httpGet(`http://127.0.0.1:${relay.port}/metrics`)).body;
    expect(metric(metrics, 'pgrelay_auth_failures_total', '{reason="bad_signature"}')).toBeGreaterThanOrEqual(6);
    expect(metric(metrics, 'pgrelay_closes_total', '{code="4401"}')).toBeGreaterThanOrEqual(6);
    // five refusals of one reason within seconds: at most one line (none when the first test's line is still in its window)
    expect(refusalLines().length - before).toBeLessThanOrEqual(1);
    const first = refusalLines().find((l) => l.reason === 'bad_signature')!;
    expect(first).toMatchObject({ level: 'info', reason: 'bad_signature', remote: '127.0.0.1', refused: 1, msg: 'refused a WebSocket upgrade: token signature invalid' });
    expect(new Set(refusalLines().map((l) => l.reason))).toEqual(new Set(['bad_signature', 'expired', 'wrong_audience', 'no_tenant', 'malformed', 'origin']));
    expect(raw.join('\n')).not.toContain(bad.split('.')[2]!);
    expect(raw.join('\n')).not.toContain(bad.split('.')[1]!);
  });

  it('counts what it held back once the window has passed', () => {
    const out: Array<Record<string, unknown>> = [];
    const refusals = new Refusals(createLogger('info', { write: (l) => void out.push(JSON.parse(l) as Record<string, unknown>) }));
    const d = { reason: 'expired', message: 'token expired', remote: '127.0.0.1', origin: '' };
    const realNow = Date.now;
    let now = realNow();
    Date.now = () => now;
    try {
      refusals.note(d);
      refusals.note(d);
      refusals.note(d);
      now += 10_001;
      refusals.note(d);
    } finally {
      Date.now = realNow;
    }
    expect(out.map((l) => [l.refused, l.msg])).toEqual([[1, 'refused a WebSocket upgrade: token expired'], [3, 'refused a WebSocket upgrade: token expired (3 such refusals since the last line)']]);
  });
});

describe('the in-band budget', () => {
  it('explains at most its rate per second in-band; past it a refusal is plain HTTP', async () => {
    const refusals = new Refusals(createLogger('silent'), 5);
    const taken = Array.from({ length: 8 }, () => refusals.inBand());
    expect(taken.filter(Boolean).length).toBe(5);
    await sleep(450);
    expect(refusals.inBand()).toBe(true); // about two refilled in 450 ms
  });
});
