// The connection against a real WebSocket server playing the relay: handshake, status, backoff, close codes, token refresh, heartbeat.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { createRelayClient, type RelayClient, type StatusChange } from '../index.js';
import type { RelayClientOptions } from '../relay-client-options.js';
import { leakGuard, passes, sleep, until } from '../../db/testing/index.js';
import { fakeJwt, startTestRelay, type TestRelay, type TestRelayOptions } from './support/test-relay.js';

// timers count too: the client's reconnect, heartbeat and refresh timers must end with the test
leakGuard({ timers: true, timeoutMs: 2000 });

let relay: TestRelay | undefined;
let client: RelayClient | undefined;
afterEach(async () => {
  client?.close();
  client = undefined;
  await relay?.close();
  relay = undefined;
  vi.restoreAllMocks();
});

const token = fakeJwt({ tenant_id: '7', exp: Math.floor(Date.now() / 1000) + 3600 });

async function setup(relayOptions: TestRelayOptions = {}, clientOptions: Partial<RelayClientOptions> = {}) {
  relay = await startTestRelay(relayOptions);
  client = createRelayClient({ url: relay.url, token, WebSocket, backoff: { minMs: 20, maxMs: 200 }, ...clientOptions });
  return { relay, client };
}

const gaps = (r: TestRelay) => r.connections.slice(1).map((c, i) => c.at - r.connections[i]!.at);

/**
 * The delays the client asks for before each reconnect (the timers that run its `connect`), exactly. Wall-clock gaps
 * between connections only bound them from below: on a loaded machine a gap of 100 ms measured 598 (the timer fires
 * late and the next handshake takes its time), so upper bounds on gaps made these tests flaky.
 */
function reconnectDelays(): () => number[] {
  const spy = vi.spyOn(globalThis, 'setTimeout');
  return () => spy.mock.calls.filter(([fn]) => typeof fn === 'function' && fn.name === 'connect').map(([, ms]) => Number(ms));
}

describe('relay client connection', () => {
  it('offers pgrelay.v1, pgrelay.reasons and bearer.<jwt>, and reports connecting → open → closed once each', async () => {
    relay = await startTestRelay();
    client = createRelayClient({ url: relay.url, token, WebSocket });
    const changes: StatusChange[] = [];
    client.onStatus((c) => changes.push(c));
    expect(client.status).toBe('connecting');
    const conn = await relay.nextConnection();
    expect(conn.offered).toEqual(['pgrelay.v1', 'pgrelay.reasons', `bearer.${token}`]);
    expect(conn.protocol).toBe('pgrelay.v1');
    await until(passes(() => expect(client!.status).toBe('open')));
    client.close();
    client.close();
    expect(client.status).toBe('closed');
    expect((await conn.closed).code).toBe(1000);
    expect(changes).toEqual([
      { from: 'connecting', to: 'open' },
      { from: 'open', to: 'closed' },
    ]);
    expect(client.lastError).toBeUndefined();
  });

  it('onStatus returns its own unsubscribe', async () => {
    const { relay, client } = await setup();
    const seen: string[] = [];
    const off = client.onStatus((c) => seen.push(c.to));
    await relay.nextConnection();
    await until(passes(() => expect(seen).toEqual(['open'])));
    off();
    client.close();
    expect(seen).toEqual(['open']);
  });

  it('backs off exponentially with jitter, up to the cap, while every attempt fails', async () => {
    // The top of each jitter range, so the delays are the ceilings: 100, 200, 400, 800, 800 ms.
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    const delays = reconnectDelays();
    const { relay, client } = await setup({ welcome: false, onConnection: (c) => c.close(1011, 'boom') }, { backoff: { minMs: 100, maxMs: 800 } });
    await until(passes(() => expect(relay.connections.length).toBeGreaterThanOrEqual(6)), { timeoutMs: 10_000 });
    client.close();
    const expected = [100, 200, 400, 800, 800];
    delays().slice(0, 5).forEach((ms, i) => expect(ms).toBeCloseTo(expected[i]! * 0.999, 6));
    // and the client waits them out: timers never fire early
    gaps(relay).slice(0, 5).forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(expected[i]! - 5));
    expect(client.status).toBe('closed');
  });

  it('resets the attempt count once the relay says welcome', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    const delays = reconnectDelays();
    let n = 0;
    // Three failures (40, 80, 160 ms), a welcome, then a failure that must wait 40 ms again, not 120 (after an open
    // connection drops, the client waits at most 3 × minMs for a minute; without the reset: min(120, 320)).
    const { relay } = await setup(
      {
        welcome: false,
        onConnection: (c) => {
          n++;
          if (n === 4) {
            c.send({ type: 'welcome', tenant: '7', seq: 0 });
            setTimeout(() => c.close(1011), 30);
          } else if (n < 6) c.close(1011);
        },
      },
      { backoff: { minMs: 40, maxMs: 320 } },
    );
    await until(passes(() => expect(relay.connections.length).toBe(6)), { timeoutMs: 5000 });
    delays().slice(0, 5).forEach((ms, i) => expect(ms).toBeCloseTo([40, 80, 160, 40, 80][i]! * 0.999, 6));
    expect(gaps(relay)[4]).toBeGreaterThanOrEqual(40 + 30 - 5);
  });

  it.each([
    [4003, 'tenant mismatch'],
    [4009, 'protocol abuse'],
    [1009, 'message too big'],
  ])('stops retrying after fatal close code %i (%s) and says why', async (code, reason) => {
    const errors: unknown[] = [];
    const { relay, client } = await setup({}, { onError: (e) => errors.push(e) });
    const conn = await relay.nextConnection();
    conn.close(code, reason);
    await until(passes(() => expect(client.status).toBe('closed')));
    expect(client.lastError).toMatchObject({ name: 'RelayError', code: 'closed', closeCode: code });
    expect(client.lastError!.message).toBe(`The relay closed the connection with code ${code} (${reason}).`);
    expect(errors).toEqual([client.lastError]);
    await sleep(150);
    expect(relay.connections).toHaveLength(1);
  });

  it('reconnects promptly after 4008 (backpressure) and 1001 (going away), whatever the failure count', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    let n = 0;
    // Two failures push the next normal delay to 4·minMs = 400 ms; 4008 and 1001 come back within minMs (100 ms).
    const codes = [1011, 1011, 4008, 1001];
    const delays = reconnectDelays();
    const { relay } = await setup({ welcome: false, onConnection: (c) => n < codes.length && c.close(codes[n++]) }, { backoff: { minMs: 100, maxMs: 5000 } });
    await until(passes(() => expect(relay.connections.length).toBe(5)), { timeoutMs: 5000 });
    delays().slice(0, 4).forEach((ms, i) => expect(ms).toBeCloseTo([100, 200, 100, 100][i]! * 0.999, 6));
    const g = gaps(relay);
    expect(g[0]).toBeGreaterThanOrEqual(95);
    expect(g[1]).toBeGreaterThanOrEqual(195);
  });

  it('asks the token function on every connect, and sends a fresh token in an auth frame before exp', async () => {
    const issued: string[] = [];
    const tokenFn = async () => {
      const now = Date.now() / 1000;
      // 5 s of lifetime: refreshed at exp − 10 % = 4.5 s after issue, which leaves a busy machine 500 ms to send it
      const t = fakeJwt({ tenant_id: '7', iat: now, exp: now + 5, n: issued.length });
      issued.push(t);
      return t;
    };
    const { relay } = await setup({}, { token: tokenFn });
    const first = await relay.nextConnection();
    expect(first.offered[2]).toBe(`bearer.${issued[0]}`);
    const auth = await first.next('auth', 6000);
    const elapsed = Date.now() - first.at;
    expect(auth.token).toBe(issued[1]);
    expect(elapsed).toBeGreaterThan(4200);
    // before the first token expires (its exp, from the token itself)
    const exp = (JSON.parse(Buffer.from(issued[0]!.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp;
    expect(Date.now() / 1000).toBeLessThan(exp);
    first.close(4001, 'token expired');
    const second = await relay.nextConnection();
    expect(second.offered[2]).toBe(`bearer.${issued[2]}`);
  });

  it('goes closed with token_expired when a static token is expired, instead of looping', async () => {
    relay = await startTestRelay();
    const expired = fakeJwt({ tenant_id: '7', exp: Math.floor(Date.now() / 1000) - 5 });
    client = createRelayClient({ url: relay.url, token: expired, WebSocket });
    await until(passes(() => expect(client!.status).toBe('closed')));
    expect(client.lastError).toMatchObject({ code: 'token_expired' });
    expect(relay.connections).toHaveLength(0);
  });

  it('goes closed on 4001 with a static token (nothing can renew it), but reconnects with a token function', async () => {
    const { relay, client } = await setup();
    (await relay.nextConnection()).close(4001, 'token expired');
    await until(passes(() => expect(client.status).toBe('closed')));
    expect(client.lastError).toMatchObject({ code: 'token_expired', closeCode: 4001 });
    await sleep(100);
    expect(relay.connections).toHaveLength(1);
  });

  it('retries when the token function throws, and reports it', async () => {
    let calls = 0;
    const errors: string[] = [];
    const { relay } = await setup(
      {},
      {
        token: () => {
          if (++calls < 3) throw new Error('auth server down');
          return token;
        },
        onError: (e) => errors.push(e.code),
      },
    );
    await relay.nextConnection();
    expect(calls).toBe(3);
    expect(errors).toEqual(['token_error', 'token_error']);
  });

  it('reconnects at once on the browser online event, skipping the rest of the backoff', async () => {
    const target = new EventTarget();
    const g = globalThis as any;
    g.addEventListener = target.addEventListener.bind(target);
    g.removeEventListener = target.removeEventListener.bind(target);
    try {
      const { relay, client } = await setup({}, { backoff: { minMs: 60_000, maxMs: 60_000 } });
      vi.spyOn(Math, 'random').mockReturnValue(0.999);
      (await relay.nextConnection()).close(1011);
      await until(passes(() => expect(client.status).toBe('reconnecting')));
      await sleep(50);
      expect(relay.connections).toHaveLength(1);
      target.dispatchEvent(new Event('online'));
      await relay.nextConnection(1000);
      await until(passes(() => expect(client.status).toBe('open')));
      client.close();
    } finally {
      delete g.addEventListener;
      delete g.removeEventListener;
    }
  });

  it('pings after silence and replaces a connection that stays silent after the ping', async () => {
    const { relay, client } = await setup({ pong: false }, { heartbeat: { idleMs: 100, timeoutMs: 100 } });
    const first = await relay.nextConnection();
    const t0 = Date.now();
    await first.next('ping', 1000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
    const second = await relay.nextConnection(2000);
    expect(second.at - t0).toBeGreaterThanOrEqual(190);
    // The half-open socket was dropped rather than left to a closing handshake.
    await first.closed;
    client.close();
  });

  it('keeps a connection whose relay answers pings', async () => {
    const { relay } = await setup({}, { heartbeat: { idleMs: 50, timeoutMs: 250 } });
    const conn = await relay.nextConnection();
    await sleep(400);
    expect(conn.received.filter((m) => m.type === 'ping').length).toBeGreaterThanOrEqual(3);
    expect(relay.connections).toHaveLength(1);
  });

  it('reports error frames without a subscription id and frames that are not JSON, and stays open', async () => {
    const errors: Array<[string, string]> = [];
    const { relay, client } = await setup({}, { onError: (e) => errors.push([e.code, e.message]) });
    const conn = await relay.nextConnection();
    conn.send({ type: 'error', code: 'rate_limited', message: 'Slow down.' });
    conn.send('{not json');
    await until(passes(() => expect(errors).toHaveLength(2)));
    expect(errors).toEqual([
      ['rate_limited', 'Slow down.'],
      ['bad_frame', 'The relay sent a frame that is not JSON.'],
    ]);
    expect(client.lastError?.code).toBe('bad_frame');
    expect(client.status).toBe('open');
  });
});
