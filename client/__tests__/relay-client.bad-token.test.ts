// A refused token, seen by the client against a real relay (issue 13): the reason reaches onError and lastError; a static token
// stops the client, a token function is asked again with a growing backoff until it returns a good token.
import WebSocket from 'ws';
import { beforeAll, describe, expect, it } from 'vitest';
import { leakGuard, sleep, until, useTestDatabase } from '../../db/testing/index.js';
import { httpGet, metric, startTestRelay, token, type TestRelay } from '../../relay/__tests__/support/relay-harness.js';
import { createRelayClient, type RelayError } from '../index.js';

const db = useTestDatabase();
let relay: TestRelay;

// no table: a token is refused at the upgrade, before any subscription
beforeAll(async () => {
  relay = await startTestRelay(db);
});
leakGuard(() => db.name);

const wrongSecret = () => token({ tenant_id: 'acme' }, { secret: 'another-secret-another-secret-another-secret' });
const refusals = async () => metric((await httpGet(`${relay.http}/metrics`)).body, 'pgrelay_closes_total', '{code="4401"}');

describe('a refused token', () => {
  it('static: onError gets bad_token with the relay\'s reason, the client closes and does not retry', async () => {
    const errors: RelayError[] = [];
    const before = await refusals();
    const client = createRelayClient({ url: relay.url, token: await wrongSecret(), WebSocket, backoff: { minMs: 20, maxMs: 100 }, onError: (e) => errors.push(e) });
    const statuses: string[] = [];
    client.onStatus((c) => statuses.push(c.to));
    await until(() => client.status === 'closed', 'the client to close');
    expect(errors.map((e) => [e.code, e.message, e.closeCode])).toEqual([['bad_token', 'The relay refused the token: token signature invalid.', 4401]]);
    expect(client.lastError).toBe(errors[0]);
    expect(statuses).toEqual(['closed']);
    // with a 20–100 ms backoff, a retrying client would have come back several times by now
    await sleep(600);
    expect(await refusals()).toBe(before + 1);
  });

  it('without a tenant claim: the relay\'s reason reaches the client', async () => {
    const errors: RelayError[] = [];
    const client = createRelayClient({ url: relay.url, token: await token({ sub: 'u1' }), WebSocket, onError: (e) => errors.push(e) });
    await until(() => client.status === 'closed', 'the client to close');
    expect(errors.map((e) => e.message)).toEqual(['The relay refused the token: token has no tenant_id claim.']);
  });

  it('from a token function: reported each time, asked again with a growing backoff, then served once the function returns a good token', async () => {
    const errors: RelayError[] = [];
    const calls: number[] = [];
    const good = await token({ tenant_id: 'acme' });
    const bad = await wrongSecret();
    const client = createRelayClient({
      url: relay.url,
      WebSocket,
      backoff: { minMs: 50, maxMs: 5000 },
      token: () => {
        calls.push(Date.now());
        return calls.length <= 5 ? bad : good;
      },
      onError: (e) => errors.push(e),
    });
    const original = Math.random;
    // the top of each jitter range, so the delays are the ceilings: 50, 100, 200, 400 ms between the five refused attempts
    Math.random = () => 0.999;
    try {
      await until(() => client.status === 'open', { what: 'the client to open', timeoutMs: 20_000 });
    } finally {
      Math.random = original;
    }
    expect(calls).toHaveLength(6);
    expect(errors.map((e) => e.code)).toEqual(['bad_token', 'bad_token', 'bad_token', 'bad_token', 'bad_token']);
    const gaps = calls.slice(1).map((t, i) => t - calls[i]!);
    // each wait is at least its backoff ceiling: it grows and is not the quick retry of a dropped connection
    [50, 100, 200, 400, 800].forEach((ceiling, i) => expect(gaps[i]).toBeGreaterThanOrEqual(ceiling * 0.999 - 5));
    client.close();
  });
});
