// Authentication at the upgrade: every refusal, origin checks, expiry, refresh, and JWKS with alg-confusion refused.
import http from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrders, leakGuard, sleep, useTestDatabase } from '../../db/testing/index.js';
import { connect, httpGet, refused, startTestRelay, token, type TestRelay } from './support/relay-harness.js';

const db = useTestDatabase();
let relay: TestRelay;
let strict: TestRelay;

beforeAll(async () => {
  await createOrders(db);
  relay = await startTestRelay(db);
  strict = await startTestRelay(db, { RELAY_JWT_AUDIENCE: 'dashboards', RELAY_JWT_ISSUER: 'https://auth.example', RELAY_ALLOWED_ORIGINS: 'https://app.example,http://localhost:5173' });
});
leakGuard(() => db.name);

async function failures(r: TestRelay): Promise<Record<string, number>> {
  const text = (await httpGet(`${r.http}/metrics`)).body;
  return Object.fromEntries([...text.matchAll(/^pgrelay_auth_failures_total\{reason="(\w+)"\} (\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
}

describe('the upgrade refuses, with HTTP 401 and a short reason', () => {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  it.each([
    ['no token', async () => null, 'no token: send it as the subprotocol bearer.<jwt> or as ?token=', 'missing'],
    ['a malformed token', async () => 'not-a-jwt', 'malformed token', 'malformed'],
    ['a wrong signature', () => token({ tenant_id: 'a' }, { secret: 'another-secret-another-secret-another-secret' }), 'token signature invalid', 'bad_signature'],
    ['an expired token', () => token({ tenant_id: 'a' }, { expiresIn: Math.floor(Date.now() / 1000) - 60 }), 'token expired', 'expired'],
    ['alg none', async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ tenant_id: 'a' })}.`, 'token algorithm not accepted', 'bad_algorithm'],
    ['HS512', () => token({ tenant_id: 'a' }, { alg: 'HS512' }), 'token algorithm not accepted', 'bad_algorithm'],
    ['no tenant claim', () => token({ sub: 'u1' }), 'token has no tenant_id claim', 'no_tenant'],
    ['a bad tables claim', () => token({ tenant_id: 'a', tables: 'orders' }), 'claim tables must be an array of table names', 'bad_claims'],
    ['a huge token', async () => 'a'.repeat(9000), 'token too large', 'too_large'],
  ])('%s', async (_name, make, body, reason) => {
    const before = (await failures(relay))[reason] ?? 0;
    expect(await refused(relay.url, await make())).toEqual({ status: 401, body });
    expect((await failures(relay))[reason]).toBe(before + 1);
  });

  it('a wrong audience or issuer, where they are required', async () => {
    const good = { tenant_id: 'a', aud: 'dashboards', iss: 'https://auth.example' };
    const c = await connect(strict.url, await token(good));
    await c.close();
    expect(await refused(strict.url, await token({ ...good, aud: 'other' }))).toEqual({ status: 401, body: 'token audience not accepted' });
    expect(await refused(strict.url, await token({ ...good, iss: 'https://evil.example' }))).toEqual({ status: 401, body: 'token issuer not accepted' });
  });

  it('an origin outside RELAY_ALLOWED_ORIGINS with 403', async () => {
    const t = await token({ tenant_id: 'a', aud: 'dashboards', iss: 'https://auth.example' });
    expect(await refused(strict.url, t, { origin: 'https://evil.example' })).toEqual({ status: 403, body: 'origin not allowed' });
    const ok = await connect(strict.url, t, { origin: 'http://localhost:5173' });
    await ok.close();
    expect((await failures(strict)).origin).toBe(1);
  });
});

describe('accepted tokens', () => {
  it('come as a subprotocol (echoing only pgrelay.v1) or as ?token=', async () => {
    const t = await token({ tenant_id: 'a' });
    const viaProtocol = await connect(relay.url, t);
    expect(viaProtocol.ws.protocol).toBe('pgrelay.v1');
    expect(await viaProtocol.next((f) => f.type === 'welcome')).toMatchObject({ type: 'welcome', tenant: 'a' });
    const viaQuery = await connect(relay.url, t, { via: 'query' });
    expect(await viaQuery.next((f) => f.type === 'welcome')).toMatchObject({ tenant: 'a' });
    await viaProtocol.close();
    await viaQuery.close();
  });

  it('close with 4001 when they expire, unless an auth message brings a new one for the same tenant', async () => {
    const soon = Math.floor(Date.now() / 1000) + 2;
    const expiring = await connect(relay.url, await token({ tenant_id: 'a' }, { expiresIn: soon }));
    const refreshed = await connect(relay.url, await token({ tenant_id: 'a' }, { expiresIn: soon }));
    refreshed.send({ type: 'auth', token: await token({ tenant_id: 'a' }, { expiresIn: '1h' }) });
    const badRefresh = await connect(relay.url, await token({ tenant_id: 'a' }, { expiresIn: soon }));
    badRefresh.send({ type: 'auth', token: 'garbage' });
    expect(await badRefresh.next((f) => f.type === 'error')).toEqual({ type: 'error', code: 'bad_token', message: 'malformed token' });
    expect(await expiring.closed).toEqual({ code: 4001, reason: 'token expired' });
    expect(Date.now() / 1000).toBeGreaterThanOrEqual(soon);
    expect(await badRefresh.closed).toEqual({ code: 4001, reason: 'token expired' });
    await sleep(600);
    expect(refreshed.ws.readyState).toBe(refreshed.ws.OPEN);
    await refreshed.close();
  });

  it('never move to another tenant or other tables: such a refresh closes with 4003', async () => {
    const c = await connect(relay.url, await token({ tenant_id: 'a' }));
    c.send({ type: 'auth', token: await token({ tenant_id: 'b' }) });
    expect(await c.closed).toEqual({ code: 4003, reason: 'token for another tenant or other tables' });
    const d = await connect(relay.url, await token({ tenant_id: 'a', tables: ['orders'] }));
    d.send({ type: 'auth', token: await token({ tenant_id: 'a' }) });
    expect((await d.closed).code).toBe(4003);
  });
});

describe('JWKS', () => {
  let jwks: http.Server;
  let keys: Awaited<ReturnType<typeof generateKeyPair>>;
  let relayJwks: TestRelay;
  beforeAll(async () => {
    keys = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    const port = (jwks.address() as { port: number }).port;
    relayJwks = await startTestRelay(db, { RELAY_JWT_SECRET: '', RELAY_JWKS_URL: `http://127.0.0.1:${port}/jwks.json` });
  });
  afterAll(async () => {
    jwks.closeAllConnections();
    await new Promise((r) => jwks.close(r));
  });

  it('accepts RS256 tokens from the key set and refuses an HS256 token keyed with the public key', async () => {
    const rs = await new SignJWT({ tenant_id: 'a' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setExpirationTime('1h').sign(keys.privateKey);
    const c = await connect(relayJwks.url, rs);
    await c.close();
    const pem = JSON.stringify(await exportJWK(keys.publicKey));
    const confused = await new SignJWT({ tenant_id: 'a' }).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).setExpirationTime('1h').sign(new TextEncoder().encode(pem));
    expect(await refused(relayJwks.url, confused)).toEqual({ status: 401, body: 'token algorithm not accepted' });
  });
});
