// GET /sse: the same subscriptions as the WebSocket, as Server-Sent Events with cursors for ids (issue 14).
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOrders, createTenantTable, insertOrder, leakGuard, useTestDatabase } from '../../db/testing/index.js';
import { allNumbered, connect, httpGet, metric, startTestRelay, token, type TestRelay } from './support/relay-harness.js';
import { openSse, type SseClient } from './support/sse-client.js';

const db = useTestDatabase();
const hasCurl = spawnSync('curl', ['--version']).status === 0;
if (!hasCurl) console.warn('relay.sse.test: curl is not installed here, so the README curl command is not run (apt-get install curl)');
let relay: TestRelay;
const open: SseClient[] = [];

beforeAll(async () => {
  await createOrders(db, { columns: { item: 'text', qty: 'int' } });
  await createTenantTable(db, 'notes', { columns: { body: 'text' } });
  await createTenantTable(db, 'blobs', { columns: { body: 'text' } });
  relay = await startTestRelay(db, { RELAY_IDLE_TIMEOUT: '8', RELAY_MAX_BACKPRESSURE: '256kb', RELAY_MAX_FRAME: '16kb' });
});
leakGuard(() => db.name);
// every stream a test opened ends with it (hooks run last-declared first: before the leak guard counts connections)
afterEach(async () => {
  for (const s of open.splice(0)) {
    s.close();
    await s.ended;
  }
});

async function sse(query: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const s = await openSse(`${relay.http}/sse${query}`, headers);
  open.push(s);
  return s;
}
const bearer = async (claims: Record<string, unknown>, options?: Parameters<typeof token>[1]) => ({ authorization: `Bearer ${await token(claims, options)}` });

describe('GET /sse streams a subscription as events', () => {
  it('sends welcome, subscribed (id = its seq) and each committed transaction with id = seq, and heartbeat comments', async () => {
    const s = await sse('?table=orders', await bearer({ tenant_id: 'a' }));
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(s.headers['cache-control']).toBe('no-store');
    await s.until(() => s.events.length >= 2, 10_000, 'welcome and subscribed');
    expect(s.events[0]).toEqual({ id: undefined, frame: { type: 'welcome', tenant: 'a', seq: expect.any(Number) } });
    const subscribed = s.events[1]!;
    expect(subscribed.frame).toMatchObject({ type: 'subscribed', id: 'sse' });
    expect(subscribed.id).toBe(String(subscribed.frame.seq));
    await db.query(`insert into orders (tenant_id, item, qty) values ('a', 'pen', 1)`);
    await db.query(`insert into orders (tenant_id, item, qty) values ('a', 'ink', 2), ('a', 'nib', 3)`);
    await s.until(() => s.txs().length === 2, 10_000, 'two transactions');
    const txEvents = s.events.filter((e) => e.frame.type === 'tx');
    for (const e of txEvents) expect(e.id).toBe(String(e.frame.seq));
    expect(txEvents.map((e) => e.frame.changes.map((c: any) => c.row.item))).toEqual([['pen'], ['ink', 'nib']]);
    expect(txEvents[0]!.frame).toMatchObject({ sub: 'sse', changes: [{ table: 'public.orders', op: 'insert' }] });
    // RELAY_IDLE_TIMEOUT=8: a heartbeat comment every 4 s keeps proxies from closing a quiet stream
    await s.until(() => s.comments.includes('ping'), 9_000, 'a heartbeat comment');
    s.close();
  });

  it('streams one tenant only: a token never sees another tenant, and ?token= works where no header can be set', async () => {
    const a = await sse('?table=orders');
    expect(a.status).toBe(401);
    const ta = await token({ tenant_id: 'a' });
    const sa = await sse(`?table=orders&token=${encodeURIComponent(ta)}`);
    const sb = await sse('?table=orders', await bearer({ tenant_id: 'b' }));
    const all = await sse('?table=orders', await bearer({ all_tenants: true }));
    for (const s of [sa, sb, all]) await s.until(() => s.frames().some((f) => f.type === 'subscribed'));
    const c = await db.connect();
    for (let i = 0; i < 30; i++) await insertOrder(c, { tenant_id: i % 3 === 0 ? 'b' : 'a', item: `item${i}`, qty: i });
    // a move from b to a: b sees a delete, a an insert
    await c.query(`update orders set tenant_id = 'a' where item = 'item0'`);
    await c.end();
    await all.until(() => all.txs().length === 31, 10_000, 'all 31 transactions');
    await sa.until(() => sa.txs().length === 21, 10_000, "tenant a's 21");
    await sb.until(() => sb.txs().length === 11, 10_000, "tenant b's 11");
    for (const [s, t] of [[sa, 'a'], [sb, 'b']] as const) {
      for (const tx of s.txs()) for (const ch of tx.changes) expect(ch.row.tenant_id === t || (ch.op === 'delete' && t === 'b')).toBe(true);
    }
    expect(sb.txs().at(-1)!.changes).toEqual([expect.objectContaining({ op: 'delete' })]);
    expect(sa.txs().at(-1)!.changes).toEqual([expect.objectContaining({ op: 'insert' })]);
    expect(all.txs().at(-1)!.changes).toEqual([expect.objectContaining({ op: 'update' })]);
  });

  it('resumes by Last-Event-ID with nothing lost or repeated, across transactions split into several frames', async () => {
    const auth = await bearer({ tenant_id: 'r' });
    const first = await sse('?table=notes&snapshot=1', auth);
    await first.until(() => first.frames().some((f) => f.type === 'snapshot' && !f.more), 10_000, 'the snapshot');
    // the id of the snapshot's last page is its position: resuming from it never repeats the snapshot
    const snapEvent = first.events.find((e) => e.frame.type === 'snapshot' && !e.frame.more)!;
    expect(snapEvent.id).toBe(String(snapEvent.frame.seq));
    expect(first.events.find((e) => e.frame.type === 'subscribed')!.id).toBeUndefined();
    const c = await db.connect();
    const body = 'y'.repeat(6000);
    // 12 transactions of 1 to 4 rows of 6 kB: with RELAY_MAX_FRAME=16kb the larger ones are split
    for (let i = 0; i < 12; i++) {
      await c.query('begin');
      for (let r = 0; r <= i % 4; r++) await c.query(`insert into notes (tenant_id, body) values ('r', $1)`, [`${i}:${r}:${body}`]);
      await c.query('commit');
    }
    await first.until(() => new Set(first.txs().map((t) => t.seq)).size === 12, 10_000, 'twelve transactions');
    const parts = first.events.filter((e) => e.frame.type === 'tx');
    expect(parts.length).toBeGreaterThan(12);
    for (const e of parts) expect(e.id).toBe(e.frame.more ? undefined : String(e.frame.seq));
    // cut after the 5th transaction's last part, as a dropped connection would
    const cutAt = [...new Set(parts.map((e) => e.frame.seq))][4] as number;
    first.close();
    for (let i = 12; i < 20; i++) await c.query(`insert into notes (tenant_id, body) values ('r', $1)`, [`${i}:0:x`]);
    await c.end();
    const resumed = await sse('?table=notes&snapshot=1', { ...auth, 'last-event-id': String(cutAt) });
    await resumed.until(() => new Set(resumed.txs().map((t) => t.seq)).size === 15, 10_000, 'the 15 transactions after the cut');
    expect(resumed.frames().some((f) => f.type === 'snapshot')).toBe(false);
    const seqs = [...new Set(resumed.txs().map((t) => t.seq as number))];
    expect(seqs.slice(0, 7)).toEqual([...new Set(parts.map((e) => e.frame.seq as number))].slice(5));
    expect(seqs.every((q, k) => q > cutAt && (k === 0 || q > seqs[k - 1]!))).toBe(true);
    // every part of every transaction, once
    const rows = resumed.txs().flatMap((t) => t.changes.map((ch: any) => ch.row.body.split(':').slice(0, 2).join(':')));
    expect(rows).toEqual([...Array.from({ length: 7 }, (_, k) => k + 5).flatMap((i) => Array.from({ length: (i % 4) + 1 }, (_, r) => `${i}:${r}`)), ...Array.from({ length: 8 }, (_, k) => `${k + 12}:0`)]);
  });

  it('after a reset the event id is "reset", the stream ends, and a reconnect with it starts afresh', async () => {
    const auth = await bearer({ tenant_id: 'z' });
    const ahead = await sse('?table=orders&since=999999999', auth);
    await ahead.ended;
    const reset = ahead.events.find((e) => e.frame.type === 'reset')!;
    expect(reset.frame).toMatchObject({ type: 'reset', sub: 'sse', reason: 'cursor_ahead' });
    expect(reset.id).toBe('reset');
    expect(ahead.lastId()).toBe('reset');
    // what EventSource sends back: the since of the URL no longer applies
    const again = await sse('?table=orders&since=999999999', { ...auth, 'last-event-id': 'reset' });
    await again.until(() => again.frames().some((f) => f.type === 'subscribed'));
    expect(again.frames().some((f) => f.type === 'reset')).toBe(false);
    again.close();
  });

  it('cuts a slow reader once it falls RELAY_MAX_BACKPRESSURE behind, with a close event; it resumes with nothing lost', async () => {
    const auth = await bearer({ tenant_id: 's' });
    const slow = await sse('?table=blobs', auth);
    const fast = await connect(relay.url, await token({ tenant_id: 's' }));
    fast.send({ type: 'subscribe', id: 'b', table: 'blobs' });
    await fast.next((f) => f.type === 'subscribed');
    await slow.until(() => slow.frames().some((f) => f.type === 'subscribed'));
    const before = metric((await httpGet(`${relay.http}/metrics`)).body, 'pgrelay_backpressure_closes_total');
    slow.pause();
    const c = await db.connect();
    const body = 'x'.repeat(3_000);
    let cut = false;
    for (let i = 0; i < 2000 && !cut; i++) {
      await c.query(`insert into blobs (tenant_id, body) values ('s', $1)`, [body]);
      if (i % 25 === 0) cut = metric((await httpGet(`${relay.http}/metrics`)).body, 'pgrelay_backpressure_closes_total') > before;
    }
    expect(cut).toBe(true);
    for (let i = 0; i < 20; i++) await c.query(`insert into blobs (tenant_id, body) values ('s', 'after')`);
    await c.end();
    slow.resume();
    await slow.ended;
    expect(slow.frames().at(-1)).toEqual({ type: 'close', code: 4008, reason: 'too slow: resume from your cursor' });
    const last = await allNumbered(db);
    await fast.until(() => fast.txs('b').at(-1)?.seq === last, 20_000, 'the WebSocket client to get everything');
    const resumed = await sse('?table=blobs', { ...auth, 'last-event-id': slow.lastId()! });
    await resumed.until(() => resumed.txs().at(-1)?.seq === last, 20_000, 'the resumed stream to catch up');
    // the cut stream's transactions and the resumed stream's, together, are exactly the WebSocket's: no gap, no repeat
    expect([...slow.txs(), ...resumed.txs()].map((t) => t.seq)).toEqual(fast.txs('b').map((t) => t.seq));
    resumed.close();
    await fast.close();
  }, 90_000);

  it('counts streams in /metrics next to WebSockets, and ends them with a close event when their token expires', async () => {
    const s1 = await sse('?table=orders', await bearer({ tenant_id: 'm' }, { expiresIn: '3s' }));
    const s2 = await sse('?table=orders', await bearer({ tenant_id: 'm' }));
    await s1.until(() => s1.frames().some((f) => f.type === 'subscribed'));
    await s2.until(() => s2.frames().some((f) => f.type === 'subscribed'));
    expect(metric((await httpGet(`${relay.http}/metrics`)).body, 'pgrelay_connections', '{transport="sse"}')).toBeGreaterThanOrEqual(2);
    await s1.ended;
    expect(s1.frames().at(-1)).toEqual({ type: 'close', code: 4001, reason: 'token expired' });
    s2.close();
    await s2.ended;
    await expect.poll(async () => metric((await httpGet(`${relay.http}/metrics`)).body, 'pgrelay_connections', '{transport="sse"}'), { timeout: 5_000 }).toBe(0);
  });

  it.skipIf(!hasCurl)("prints live changes with the README's curl command", async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const line = /curl -N -H "Authorization: Bearer \$TOKEN" "http:\/\/localhost:8080(\/sse\?table=orders)"/.exec(readme);
    expect(line, 'the README shows the curl command').not.toBeNull();
    const tok = await token({ tenant_id: 'curl' });
    const curl = spawn('curl', ['-N', '-s', '-H', `Authorization: Bearer ${tok}`, `${relay.http}${line![1]}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    curl.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    try {
      await expect.poll(() => out, { timeout: 10_000 }).toContain('"type":"subscribed"');
      await db.query(`insert into orders (tenant_id, item, qty) values ('curl', 'stapler', 7)`);
      await expect.poll(() => out, { timeout: 10_000 }).toMatch(/id: \d+\ndata: \{"type":"tx".*"item":"stapler"/);
    } finally {
      curl.kill();
    }
  });

  it('joins presence with ?presence=1: the list, then joins and leaves, next to WebSocket members; a token without sub is refused', async () => {
    const ws = await connect(relay.url, await token({ tenant_id: 'p', sub: 'alice', name: 'Alice' }));
    ws.send({ type: 'presence', join: true });
    await ws.next((f) => f.type === 'presence' && f.members);
    const s = await sse('?table=orders&presence=1', await bearer({ tenant_id: 'p', sub: 'bob', name: 'Bob' }));
    await s.until(() => s.frames().some((f) => f.type === 'presence' && f.members?.length === 2), 10_000, 'the list with both');
    expect(s.frames().find((f) => f.type === 'presence' && f.members?.length === 2)!.members).toEqual([{ sub: 'alice', name: 'Alice' }, { sub: 'bob', name: 'Bob' }]);
    expect(s.frames().some((f) => f.type === 'subscribed')).toBe(true);
    // the WebSocket member sees the stream's member arrive, and the stream sees it leave
    await ws.next((f) => f.type === 'presence' && f.joins?.some((m: any) => m.sub === 'bob'));
    await ws.close();
    await s.until(() => s.frames().some((f) => f.type === 'presence' && f.leaves?.some((m: any) => m.sub === 'alice')), 10_000, 'alice leaving');
    // another tenant's stream never sees them
    const other = await sse('?presence=1', await bearer({ tenant_id: 'q', sub: 'carol' }));
    await other.until(() => other.frames().some((f) => f.type === 'presence' && f.members), 10_000, "tenant q's list");
    expect(other.frames().find((f) => f.type === 'presence')!.members).toEqual([{ sub: 'carol', name: null }]);
    const anonymous = await sse('?presence=1', await bearer({ tenant_id: 'p' }));
    expect(anonymous.status).toBe(403);
    expect(JSON.parse(anonymous.body)).toMatchObject({ error: 'presence_not_allowed' });
  });

  it('checks a token without a table: welcome, then the response ends', async () => {
    const s = await sse('', await bearer({ tenant_id: 'h' }));
    await s.ended;
    expect(s.frames()).toEqual([{ type: 'welcome', tenant: 'h', seq: expect.any(Number) }]);
    // one short answer: its connection closes too, rather than idling in the client's pool
    expect(s.headers.connection).toBe('close');
  });
});

describe('GET /sse refuses with plain HTTP before any stream (EventSource does not retry those)', () => {
  it.each([
    ['no token', '?table=orders', {}, 401, 'bad_token'],
    ['a bad signature', '?table=orders', { authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnRfaWQiOiJhIn0.bad' }, 401, 'bad_token'],
    ['an unknown table', '?table=nope', null, 404, 'unknown_table'],
    ['a filter that is not JSON', '?table=orders&filter=%7Bnope', null, 400, 'bad_filter'],
    ['a filter on an unknown column', `?table=orders&filter=${encodeURIComponent('{"colour":{"eq":"red"}}')}`, null, 400, 'bad_filter'],
    ['since that is not a number', '?table=orders&since=abc', null, 400, 'bad_request'],
    ['since and snapshot', '?table=orders&since=1&snapshot=1', null, 400, 'bad_request'],
    ['a Last-Event-ID it never sent', '?table=orders', { 'last-event-id': 'x1' }, 400, 'bad_request'],
    ['an id over 128 characters', `?table=orders&id=${'i'.repeat(129)}`, null, 400, 'bad_request'],
  ] as const)('%s', async (_what, query, headers, status, error) => {
    const h = headers ?? (await bearer({ tenant_id: 'a' }));
    const s = await sse(query, h as Record<string, string>);
    expect(s.status).toBe(status);
    expect(s.headers['content-type']).toBe('application/json');
    expect(JSON.parse(s.body)).toMatchObject({ error, message: expect.any(String) });
  });

  it('refuses a table the token does not allow (403)', async () => {
    const s = await sse('?table=orders', await bearer({ tenant_id: 'a', tables: ['public.notes'] }));
    expect(s.status).toBe(403);
    expect(JSON.parse(s.body)).toMatchObject({ error: 'table_not_allowed' });
  });
});

describe('GET /sse and origins', () => {
  let guarded: TestRelay;
  beforeAll(async () => {
    guarded = await startTestRelay(db, { RELAY_ALLOWED_ORIGINS: 'https://app.example' });
  });

  it('answers the CORS preflight and sets access-control-allow-origin for an allowed origin only', async () => {
    const ok = await fetch(`${guarded.http}/sse?table=orders`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-headers': 'authorization' } });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(ok.headers.get('access-control-allow-headers')).toContain('authorization');
    const no = await fetch(`${guarded.http}/sse?table=orders`, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
    expect(no.status).toBe(403);
    const auth = await bearer({ tenant_id: 'a' });
    const s = await openSse(`${guarded.http}/sse?table=orders`, { ...auth, origin: 'https://app.example' });
    open.push(s);
    expect(s.status).toBe(200);
    expect(s.headers['access-control-allow-origin']).toBe('https://app.example');
    s.close();
    const refusedOrigin = await openSse(`${guarded.http}/sse?table=orders`, { ...auth, origin: 'https://evil.example' });
    expect(refusedOrigin.status).toBe(403);
    expect(JSON.parse(refusedOrigin.body)).toMatchObject({ error: 'origin_not_allowed' });
  });

  it('ends every stream with a close event 1001 when the relay shuts down', async () => {
    const extra = await startTestRelay(db);
    const s = await openSse(`${extra.http}/sse?table=orders`, await bearer({ tenant_id: 'a' }));
    open.push(s);
    await s.until(() => s.frames().some((f) => f.type === 'subscribed'));
    await extra.close();
    await s.ended;
    expect(s.frames().at(-1)).toEqual({ type: 'close', code: 1001, reason: 'relay shutting down' });
  });
});
