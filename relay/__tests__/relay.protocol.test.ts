// Protocol hygiene: every malformed or refused message gets its documented answer, abuse closes the socket, the relay keeps serving.
import { beforeAll, describe, expect, it } from 'vitest';
import { createOrders, leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { connect, startTestRelay, token, type TestRelay } from './support/relay-harness.js';

const db = useTestDatabase();
let relay: TestRelay;

beforeAll(async () => {
  await createOrders(db, { columns: { total: 'numeric', status: 'text', placed: 'timestamptz', tags: 'jsonb' } });
  relay = await startTestRelay(db, { RELAY_MAX_SUBSCRIPTIONS: '3', RELAY_RATE_LIMIT: '20', RELAY_MAX_MESSAGE: '4kb' });
});
leakGuard(() => db.name);

describe('refused messages get an error frame and the socket stays open', () => {
  it.each([
    ['not JSON', '{nope', { code: 'bad_message', message: 'message is not JSON' }],
    ['not an object', '[1,2]', { code: 'bad_message', message: 'message must be a JSON object' }],
    ['no type', '{"id":"x"}', { code: 'bad_message', message: 'message has no "type"' }],
    ['an unknown type', '{"type":"launch"}', { code: 'unknown_type', message: 'unknown message type "launch" (use subscribe, unsubscribe, auth, ping or presence)' }],
    ['a wrong field type', '{"type":"subscribe","id":"s","table":7}', { code: 'bad_subscription', message: 'subscribe: table must be a table name such as "public.orders" (or "orders", meaning public.orders); got 7.', id: 's' }],
    ['a negative since', '{"type":"subscribe","id":"s","table":"orders","since":-1}', { code: 'bad_subscription', message: 'subscribe: since must be a whole number of 0 or more: the seq of the last transaction you applied (leave it out to start from now); got -1.', id: 's' }],
    ['an unknown field', '{"type":"subscribe","id":"s","table":"orders","tenant":"b"}', { code: 'bad_subscription', message: 'subscribe: unknown field "tenant"; a subscribe message takes type, id, table and optionally since, filter or snapshot.', id: 's' }],
    ['a missing id', '{"type":"subscribe","table":"orders"}', { code: 'bad_subscription', message: 'subscribe: id is missing; id must be a string of 1 to 128 characters that names the subscription (its frames carry it).' }],
    ['since with snapshot', '{"type":"subscribe","id":"s","table":"orders","since":1,"snapshot":true}', { code: 'bad_subscription', message: 'subscribe: give since or snapshot, not both', id: 's' }],
    ['an unknown table', '{"type":"subscribe","id":"s","table":"nope"}', { code: 'unknown_table', message: 'table public.nope is not watched: check the name, or have it captured with pgrelay watch public.nope --tenant-column <column>', id: 's' }],
    ['an unknown filter column', '{"type":"subscribe","id":"s","table":"orders","filter":{"nope":{"eq":1}}}', { code: 'bad_filter', message: 'public.orders has no column "nope" to filter on; its streamed columns are id, tenant_id, total, status, placed, tags', id: 's' }],
    ['a filter value of the wrong type', '{"type":"subscribe","id":"s","table":"orders","filter":{"total":{"gt":"lots"}}}', { code: 'bad_filter', message: 'filter value for column "total" (numeric) must be a decimal number', id: 's' }],
    ['an ordering on json', '{"type":"subscribe","id":"s","table":"orders","filter":{"tags":{"gt":1}}}', { code: 'bad_filter', message: 'column "tags" of type jsonb supports only eq, neq and in', id: 's' }],
    ['a bad timestamp', '{"type":"subscribe","id":"s","table":"orders","filter":{"placed":{"gt":"soon"}}}', { code: 'bad_filter', message: 'filter value for column "placed" (timestamp with time zone) must be an ISO 8601 timestamp such as 2026-01-02T03:04:05Z', id: 's' }],
    ['an unknown subscription', '{"type":"unsubscribe","id":"zz"}', { code: 'unknown_subscription', message: 'no subscription zz', id: 'zz' }],
  ])('%s', async (_name, raw, error) => {
    const c = await connect(relay.url, await token({ tenant_id: 'a' }));
    c.send(raw);
    expect(await c.next((f) => f.type === 'error')).toEqual({ type: 'error', ...error });
    c.send({ type: 'ping' });
    expect(await c.next((f) => f.type === 'pong')).toEqual({ type: 'pong' });
    await c.close();
  });

  it('binary frames, duplicates and too many subscriptions', async () => {
    const c = await connect(relay.url, await token({ tenant_id: 'a' }));
    c.ws.send(Buffer.from([1, 2, 3]));
    expect(await c.next((f) => f.type === 'error')).toEqual({ type: 'error', code: 'bad_message', message: 'messages are JSON text frames' });
    for (const id of ['a', 'b', 'c']) {
      c.send({ type: 'subscribe', id, table: 'orders' });
      await c.next((f) => f.type === 'subscribed' && f.id === id);
    }
    c.send({ type: 'subscribe', id: 'a', table: 'orders' });
    expect(await c.next((f) => f.type === 'error')).toMatchObject({ code: 'duplicate_subscription', id: 'a' });
    c.send({ type: 'subscribe', id: 'd', table: 'orders' });
    expect(await c.next((f) => f.type === 'error')).toEqual({ type: 'error', code: 'too_many_subscriptions', message: 'at most 3 subscriptions per connection', id: 'd' });
    c.send({ type: 'unsubscribe', id: 'a' });
    c.send({ type: 'subscribe', id: 'd', table: 'orders' });
    expect(await c.next((f) => f.type === 'subscribed' && f.id === 'd')).toBeTruthy();
    await c.close();
  });
});

describe('abuse closes the socket with a documented code', () => {
  it('a message over RELAY_MAX_MESSAGE: 1009', async () => {
    const c = await connect(relay.url, await token({ tenant_id: 'a' }));
    c.send({ type: 'ping', pad: 'x'.repeat(5000) });
    expect((await c.closed).code).toBe(1009);
  });

  it('ten refused messages: 4009', async () => {
    const c = await connect(relay.url, await token({ tenant_id: 'a' }));
    for (let i = 0; i < 10; i++) c.send('garbage');
    expect(await c.closed).toEqual({ code: 4009, reason: 'too many refused messages' });
    expect(c.frames.filter((f) => f.type === 'error')).toHaveLength(10);
  });

  it('a flood beyond RELAY_RATE_LIMIT: rate_limited errors, then 4029', async () => {
    const c = await connect(relay.url, await token({ tenant_id: 'a' }));
    for (let i = 0; i < 100; i++) c.send({ type: 'ping' });
    const closed = await c.closed;
    expect(closed).toEqual({ code: 4029, reason: 'too many messages' });
    expect(c.frames.filter((f) => f.type === 'pong').length).toBeGreaterThanOrEqual(19);
    expect(c.frames.some((f) => f.type === 'error' && f.code === 'rate_limited')).toBe(true);
  });

  it('and the relay keeps serving', async () => {
    const c = await connect(relay.url, await token({ tenant_id: 'a' }));
    c.send({ type: 'subscribe', id: 'ok', table: 'orders' });
    await c.next((f) => f.type === 'subscribed');
    await db.query(`insert into orders (tenant_id, total) values ('a', 1)`);
    expect((await c.next((f) => f.type === 'tx')).changes[0].row.total).toBe('1');
    await c.close();
  });
});

describe('issue 12: commit times', () => {
  it('go out in UTC ending in Z, live and replayed from the log', async () => {
    const c = await connect(relay.url, await token({ tenant_id: 'z' }));
    try {
      c.send({ type: 'subscribe', id: 'live', table: 'orders' });
      await c.next((f) => f.type === 'subscribed' && f.id === 'live');
      await db.query(`insert into orders (tenant_id, total) values ('z', 1)`);
      const live = await c.next((f) => f.type === 'tx' && f.sub === 'live');
      c.send({ type: 'subscribe', id: 'old', table: 'orders', since: live.seq - 1 });
      const replayed = await c.next((f) => f.type === 'tx' && f.sub === 'old');
      for (const f of [live, replayed]) expect(f.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      expect(replayed.at).toBe(live.at);
    } finally {
      await c.close();
    }
  });
});
