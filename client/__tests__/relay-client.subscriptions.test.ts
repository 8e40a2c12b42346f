// Subscriptions against a real WebSocket server playing the relay: ids, resume from cursors, duplicates, split transactions, resets, origin.
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createRelayClient, localStorageCursorStore, type RelayClient, type RelayClientOptions, type RelayTransaction } from '../index.js';
import type { Change, ServerMessage, SubscribeMessage } from '../shared/protocol.js';
import { subscriptionId } from '../subscription-id.js';
import { leakGuard, passes, sleep, until } from '../../db/testing/index.js';
import { fakeJwt, startTestRelay, type RelayConnection, type TestRelay } from './support/test-relay.js';

// timers count too: the client's reconnect, heartbeat and refresh timers must end with the test
leakGuard({ timers: true, timeoutMs: 2000 });

let relay: TestRelay | undefined;
const clients: RelayClient[] = [];
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  await relay?.close();
  relay = undefined;
});

const token = fakeJwt({ tenant_id: '7', exp: Math.floor(Date.now() / 1000) + 3600 });
async function setup(options: Partial<RelayClientOptions> = {}) {
  relay ??= await startTestRelay();
  const client = createRelayClient({ url: relay.url, token, WebSocket, backoff: { minMs: 10, maxMs: 50 }, ...options });
  clients.push(client);
  return { relay, client };
}

const change = (id: number, op: Change['op'] = 'insert'): Change => ({ table: 'public.orders', op, pk: { id: String(id) }, row: { id: String(id), n: id } });
const txFrame = (sub: string, seq: number, changes: Change[], extra: Partial<Extract<ServerMessage, { type: 'tx' }>> = {}): ServerMessage => ({
  type: 'tx',
  sub,
  seq,
  at: '2026-01-01T00:00:00.000Z',
  origin: null,
  changes,
  ...extra,
});

/** Reads the client's subscribe message and confirms it at `seq`. */
async function accept(conn: RelayConnection, seq: number): Promise<SubscribeMessage> {
  const m = await conn.next('subscribe');
  conn.send({ type: 'subscribed', id: m.id, seq });
  return m;
}

function collector() {
  const txs: RelayTransaction[] = [];
  const changes: string[] = [];
  return {
    txs,
    changes,
    handlers: {
      onTransaction: (t: RelayTransaction) => txs.push(t),
      onChange: (c: { op: string; pk: unknown }, t: RelayTransaction) => changes.push(`${t.seq}:${c.op}:${(c.pk as { id: string }).id}`),
    },
  };
}

/** A client subscribed to orders from `since`, confirmed on the scripted relay's first connection; its handlers' calls in `got`. */
async function subscribedFrom(since: number) {
  const { relay, client } = await setup();
  const c1 = await relay.nextConnection();
  const got = collector();
  const sub = client.subscribe('orders', { since }, got.handlers);
  await accept(c1, since);
  return { relay, c1, got, sub };
}

describe('relay client subscriptions', () => {
  it('subscribes with a qualified table and a deterministic id, numbering duplicates, and unsubscribes', async () => {
    const { relay, client } = await setup();
    const conn = await relay.nextConnection();
    const filter = { status: { eq: 'open' } };
    const a = client.subscribe('orders', { filter });
    const b = client.subscribe('public.orders', { filter });
    const c = client.subscribe('orders', { snapshot: true });
    const base = subscriptionId('public.orders', filter, false);
    expect([a.id, b.id, c.id]).toEqual([base, `${base}:2`, subscriptionId('public.orders', undefined, true)]);
    expect(await conn.next('subscribe')).toEqual({ type: 'subscribe', id: base, table: 'public.orders', filter });
    expect(await conn.next('subscribe')).toEqual({ type: 'subscribe', id: `${base}:2`, table: 'public.orders', filter });
    expect(await conn.next('subscribe')).toEqual({ type: 'subscribe', id: c.id, table: 'public.orders', snapshot: true });
    a.unsubscribe();
    a.unsubscribe();
    expect(await conn.next('unsubscribe')).toEqual({ type: 'unsubscribe', id: base });
    // The freed id is the first one a new equal subscription gets, so ids stay the same across clients.
    expect(client.subscribe('orders', { filter }).id).toBe(base);
    // Another client (another tab) asking for the same stream uses the same id.
    const other = (await setup()).client;
    expect(other.subscribe('orders', { filter }).id).toBe(base);
    await sleep(20);
    expect(conn.received.filter((m) => m.type === 'unsubscribe')).toHaveLength(1);
  });

  it('resubscribes every subscription from its cursor after the relay drops the socket', async () => {
    const { relay, client } = await setup();
    const c1 = await relay.nextConnection();
    const live = client.subscribe('orders', {}, {});
    const snap = client.subscribe('audit.events', { snapshot: true }, {});
    const fresh = client.subscribe('items', { snapshot: true }, {});
    const fromHere = client.subscribe('notes', {}, {});
    await accept(c1, 10);
    await accept(c1, 10);
    await accept(c1, 10);
    await accept(c1, 12);
    c1.send(txFrame(live.id, 11, [change(1)]));
    c1.send({ type: 'snapshot', sub: snap.id, seq: 10, rows: [{ id: '1' }], more: false });
    c1.send(txFrame(snap.id, 14, [change(2)]));
    await until(passes(() => expect([live.cursor, snap.cursor, fresh.cursor, fromHere.cursor]).toEqual([11, 14, undefined, 12])));
    c1.close(1011, 'relay restart');
    const c2 = await relay.nextConnection();
    const resent = await Promise.all([c2.next('subscribe'), c2.next('subscribe'), c2.next('subscribe'), c2.next('subscribe')]);
    expect(resent).toEqual([
      { type: 'subscribe', id: live.id, table: 'public.orders', since: 11 },
      { type: 'subscribe', id: snap.id, table: 'audit.events', since: 14 },
      // No snapshot arrived yet: ask for it again.
      { type: 'subscribe', id: fresh.id, table: 'public.items', snapshot: true },
      // A live subscription resumes from where the relay confirmed it, so nothing committed while away is lost.
      { type: 'subscribe', id: fromHere.id, table: 'public.notes', since: 12 },
    ]);
    expect(client.status).toBe('open');
  });

  it('ignores transactions replayed after a reconnect (seq at or below the cursor)', async () => {
    const { relay, c1, got, sub } = await subscribedFrom(0);
    c1.send(txFrame(sub.id, 1, [change(1)]));
    c1.send(txFrame(sub.id, 2, [change(2)]));
    await until(passes(() => expect(sub.cursor).toBe(2)));
    c1.close(1001);
    const c2 = await relay.nextConnection();
    expect((await accept(c2, 2)).since).toBe(2);
    // Another relay serving the same cursor a little generously.
    c2.send(txFrame(sub.id, 1, [change(1)]));
    c2.send(txFrame(sub.id, 2, [change(2)]));
    c2.send(txFrame(sub.id, 3, [change(3)]));
    await until(passes(() => expect(sub.cursor).toBe(3)));
    expect(got.changes).toEqual(['1:insert:1', '2:insert:2', '3:insert:3']);
  });

  it('applies a split transaction once, and a split cut by a reconnect once, when it comes again whole', async () => {
    const { relay, c1, got, sub } = await subscribedFrom(4);
    c1.send(txFrame(sub.id, 5, [change(1), change(2)], { more: true }));
    c1.send(txFrame(sub.id, 5, [change(3, 'update')]));
    c1.send(txFrame(sub.id, 6, [change(4)], { more: true }));
    await until(passes(() => expect(got.txs).toHaveLength(1)));
    expect(got.txs[0]!.changes.map((c) => c.pk)).toEqual([{ id: '1' }, { id: '2' }, { id: '3' }]);
    expect(sub.cursor).toBe(5);
    c1.close(1011);
    const c2 = await relay.nextConnection();
    expect((await accept(c2, 5)).since).toBe(5);
    c2.send(txFrame(sub.id, 6, [change(4)], { more: true }));
    c2.send(txFrame(sub.id, 6, [change(5)]));
    await until(passes(() => expect(sub.cursor).toBe(6)));
    expect(got.changes).toEqual(['5:insert:1', '5:insert:2', '5:update:3', '6:insert:4', '6:insert:5']);
    expect(got.txs).toHaveLength(2);
  });

  it('delivers snapshot pages as one onSnapshot, then follows', async () => {
    const { relay, client } = await setup();
    const conn = await relay.nextConnection();
    const snapshots: Array<[unknown[], number]> = [];
    const got = collector();
    const sub = client.subscribe('orders', { snapshot: true }, { onSnapshot: (rows, seq) => snapshots.push([rows, seq]), ...got.handlers });
    await accept(conn, 20);
    conn.send({ type: 'snapshot', sub: sub.id, seq: 20, rows: [{ id: '1' }, { id: '2' }], more: true });
    conn.send({ type: 'snapshot', sub: sub.id, seq: 20, rows: [{ id: '3' }], more: false });
    conn.send(txFrame(sub.id, 21, [change(4)]));
    await until(passes(() => expect(sub.cursor).toBe(21)));
    expect(snapshots).toEqual([[[{ id: '1' }, { id: '2' }, { id: '3' }], 20]]);
    expect(got.changes).toEqual(['21:insert:4']);
  });

  it('on reset calls onReset and resubscribes: with a snapshot when one was asked for, else from reset.seq', async () => {
    const { relay, client } = await setup();
    const conn = await relay.nextConnection();
    const resets: string[] = [];
    const snapshots: number[] = [];
    const snap = client.subscribe('orders', { snapshot: true }, { onReset: (r) => resets.push(`snap ${r}`), onSnapshot: (_, seq) => snapshots.push(seq) });
    const live = client.subscribe('items', { since: 3 }, { onReset: (r) => resets.push(`live ${r}`) });
    await accept(conn, 50);
    await accept(conn, 50);
    conn.send({ type: 'snapshot', sub: snap.id, seq: 50, rows: [], more: false });
    conn.send({ type: 'reset', sub: snap.id, reason: 'cursor_expired', seq: 90 });
    conn.send({ type: 'reset', sub: live.id, reason: 'cursor_ahead', seq: 90 });
    expect(await conn.next('subscribe')).toEqual({ type: 'subscribe', id: snap.id, table: 'public.orders', snapshot: true });
    expect(await conn.next('subscribe')).toEqual({ type: 'subscribe', id: live.id, table: 'public.items', since: 90 });
    expect(resets).toEqual(['snap cursor_expired', 'live cursor_ahead']);
    conn.send({ type: 'snapshot', sub: snap.id, seq: 91, rows: [{ id: '1' }], more: false });
    await until(passes(() => expect(snapshots).toEqual([50, 91])));
    expect(snap.cursor).toBe(91);
  });

  it('marks its own origin self, and skipSelf drops those transactions while the cursor advances', async () => {
    const { relay, client } = await setup({ origin: 'tab-1' });
    const skipper = (await setup({ origin: 'tab-1', skipSelf: true })).client;
    const [c1, c2] = [await relay.nextConnection(), await relay.nextConnection()];
    const a = collector();
    const b = collector();
    const sa = client.subscribe('orders', { since: 0 }, a.handlers);
    const sb = skipper.subscribe('orders', { since: 0 }, b.handlers);
    for (const [conn, id] of [
      [c1, sa.id],
      [c2, sb.id],
    ] as const) {
      await accept(conn, 0);
      conn.send(txFrame(id, 1, [change(1)], { origin: 'tab-1' }));
      conn.send(txFrame(id, 2, [change(2)], { origin: 'backoffice' }));
    }
    await until(passes(() => expect([sa.cursor, sb.cursor]).toEqual([2, 2])));
    expect(a.txs.map((t) => [t.seq, t.self, t.changes.map((c) => c.self)])).toEqual([
      [1, true, [true]],
      [2, false, [false]],
    ]);
    expect(b.txs.map((t) => t.seq)).toEqual([2]);
  });

  it('routes an error frame with an id to that subscription, and survives a throwing handler', async () => {
    const errors: string[] = [];
    const { relay, client } = await setup({ onError: (e) => errors.push(`client ${e.code}`) });
    const conn = await relay.nextConnection();
    const bad = client.subscribe('secrets', {}, { onError: (e) => errors.push(`sub ${e.code}: ${e.message}`) });
    const boom = client.subscribe('orders', { since: 0 }, {
      onChange: () => {
        throw new Error('app bug');
      },
    });
    await conn.next('subscribe');
    await accept(conn, 0);
    conn.send({ type: 'error', code: 'table_not_allowed', message: 'The token may not read public.secrets.', id: bad.id });
    conn.send(txFrame(boom.id, 1, [change(1)]));
    conn.send(txFrame(boom.id, 2, [change(2)]));
    await until(passes(() => expect(errors).toHaveLength(3)));
    expect(errors).toEqual(['sub table_not_allowed: The token may not read public.secrets.', 'client handler_error', 'client handler_error']);
    expect((client.lastError?.cause as Error).message).toBe('app bug');
    expect(client.status).toBe('open');
  });

  it('resumes a reloaded page from the cursor store', async () => {
    const map = new Map<string, string>();
    const storage = { getItem: (k: string) => map.get(k) ?? null, setItem: (k: string, v: string) => void map.set(k, v) };
    // An async store, as IndexedDB-backed ones are.
    const sync = localStorageCursorStore('t:', storage);
    const cursorStore = { get: async (k: string) => sync.get(k), set: sync.set };
    const first = await setup({ cursorStore });
    const c1 = await first.relay.nextConnection();
    const sub = first.client.subscribe('orders', {}, {});
    expect((await accept(c1, 30)).since).toBeUndefined();
    c1.send(txFrame(sub.id, 31, [change(1)]));
    await until(passes(() => expect(map.get(`t:${sub.id}`)).toBe('31')));
    first.client.close();

    const second = await setup({ cursorStore });
    const c2 = await second.relay.nextConnection();
    const again = second.client.subscribe('orders', {}, {});
    expect(again.id).toBe(sub.id);
    expect(await c2.next('subscribe')).toEqual({ type: 'subscribe', id: sub.id, table: 'public.orders', since: 31 });
    // A snapshot subscription wants rows, so it never starts from a stored cursor.
    map.set(`t:${subscriptionId('public.orders', undefined, true)}`, '31');
    expect((await (second.client.subscribe('orders', { snapshot: true }), c2.next('subscribe'))).snapshot).toBe(true);
  });
});
