// Cursor bookkeeping of one subscription, frame by frame, without a socket.
import { describe, expect, it } from 'vitest';
import type { Change, ServerMessage } from '../shared/protocol.js';
import { createSubscription, type RelayTransaction, type SubscriptionHandlers } from '../subscription.js';

const ch = (id: number, op: Change['op'] = 'insert'): Change => ({ table: 'public.orders', op, pk: { id: String(id) }, row: { id: String(id) } });
const tx = (seq: number, changes: Change[], extra: Partial<Extract<ServerMessage, { type: 'tx' }>> = {}): ServerMessage => ({
  type: 'tx',
  sub: 's',
  seq,
  at: '2026-01-01T00:00:00Z',
  origin: null,
  changes,
  ...extra,
});

function recorder() {
  const log: string[] = [];
  const txs: RelayTransaction[] = [];
  const h: SubscriptionHandlers = {
    onSnapshot: (rows, seq) => log.push(`snapshot ${seq}: ${rows.map((r) => r.id).join(',')}`),
    onTransaction: (t) => (txs.push(t), log.push(`tx ${t.seq}: ${t.changes.length}`)),
    onChange: (c, t) => log.push(`change ${t.seq} ${c.op} ${String(c.pk?.id)}`),
    onReset: (r) => log.push(`reset ${r}`),
    onError: (e) => log.push(`error ${e.code}: ${e.message}`),
  };
  return { log, txs, h };
}

describe('subscription bookkeeping', () => {
  it('applies a split transaction once, when its last frame arrives, then advances the cursor', () => {
    const { log, txs, h } = recorder();
    const s = createSubscription('s', 'public.orders', {}, h);
    s.apply({ type: 'subscribed', id: 's', seq: 10 });
    expect(s.cursor).toBe(10);
    expect(s.apply(tx(11, [ch(1), ch(2)], { more: true }))).toBe(false);
    expect(s.apply(tx(11, [ch(3)], { more: true }))).toBe(false);
    expect(log).toEqual([]);
    expect(s.cursor).toBe(10);
    s.apply(tx(11, [ch(4, 'update')]));
    expect(log).toEqual(['tx 11: 4', 'change 11 insert 1', 'change 11 insert 2', 'change 11 insert 3', 'change 11 update 4']);
    expect(txs[0]).toMatchObject({ seq: 11, at: '2026-01-01T00:00:00Z', origin: null, self: false });
    expect(s.cursor).toBe(11);
  });

  it('ignores transactions at or below the cursor (a resume overlapping what was applied)', () => {
    const { log, h } = recorder();
    const s = createSubscription('s', 'public.orders', { since: 20 }, h);
    s.apply(tx(19, [ch(1)]));
    s.apply(tx(20, [ch(2)]));
    s.apply(tx(21, [ch(3)]));
    s.apply(tx(21, [ch(3)]));
    s.apply(tx(20, [ch(2)], { more: true }));
    expect(log).toEqual(['tx 21: 1', 'change 21 insert 3']);
    expect(s.cursor).toBe(21);
  });

  it('discards the frames of a transaction cut by a reconnect, and applies it whole when resent', () => {
    const { log, h } = recorder();
    const s = createSubscription('s', 'public.orders', { since: 5 }, h);
    s.apply(tx(6, [ch(1)], { more: true }));
    // the connection is lost; on the next one the relay answers the resubscribe, then sends the transaction again
    s.apply({ type: 'subscribed', id: 's', seq: 9 });
    s.apply(tx(6, [ch(1)], { more: true }));
    s.apply(tx(6, [ch(2)]));
    expect(log).toEqual(['tx 6: 2', 'change 6 insert 1', 'change 6 insert 2']);
  });

  it('accumulates snapshot pages until more: false, and drops live frames that come before the snapshot', () => {
    const { log, h } = recorder();
    const s = createSubscription('s', 'public.orders', { snapshot: true }, h);
    expect(s.message()).toEqual({ type: 'subscribe', id: 's', table: 'public.orders', snapshot: true });
    s.apply({ type: 'subscribed', id: 's', seq: 30 });
    expect(s.cursor).toBeUndefined();
    s.apply(tx(29, [ch(9)]));
    s.apply({ type: 'snapshot', sub: 's', seq: 30, rows: [{ id: '1' }, { id: '2' }], more: true });
    s.apply({ type: 'snapshot', sub: 's', seq: 30, rows: [{ id: '3' }], more: false });
    s.apply(tx(31, [ch(4)]));
    expect(log).toEqual(['snapshot 30: 1,2,3', 'tx 31: 1', 'change 31 insert 4']);
    expect(s.message()).toEqual({ type: 'subscribe', id: 's', table: 'public.orders', since: 31 });
  });

  it('resubscribes with a snapshot after a reset of a snapshot subscription, from reset.seq otherwise', () => {
    const a = recorder();
    const snap = createSubscription('s', 'public.orders', { snapshot: true, filter: { status: { eq: 'open' } } }, a.h);
    snap.apply({ type: 'snapshot', sub: 's', seq: 3, rows: [], more: false });
    expect(snap.apply({ type: 'reset', sub: 's', reason: 'cursor_expired', seq: 90 })).toBe(true);
    expect(snap.message()).toEqual({ type: 'subscribe', id: 's', table: 'public.orders', filter: { status: { eq: 'open' } }, snapshot: true });
    expect(a.log).toEqual(['snapshot 3: ', 'reset cursor_expired']);

    const b = recorder();
    const live = createSubscription('s', 'public.orders', { since: 7 }, b.h);
    expect(live.apply({ type: 'reset', sub: 's', reason: 'cursor_ahead', seq: 90 })).toBe(true);
    expect(live.message()).toEqual({ type: 'subscribe', id: 's', table: 'public.orders', since: 90 });
    expect(b.log).toEqual(['reset cursor_ahead']);
  });

  it('marks transactions of its own origin as self, and skipSelf drops them while the cursor advances', () => {
    const a = recorder();
    const s = createSubscription('s', 'public.orders', { since: 0 }, a.h, { origin: 'tab-1' });
    s.apply(tx(1, [ch(1)], { origin: 'tab-1' }));
    s.apply(tx(2, [ch(2)], { origin: 'other' }));
    expect(a.txs.map((t) => [t.seq, t.self, t.changes[0]!.self])).toEqual([
      [1, true, true],
      [2, false, false],
    ]);

    const b = recorder();
    const skip = createSubscription('s', 'public.orders', { since: 0 }, b.h, { origin: 'tab-1', skipSelf: true });
    skip.apply(tx(1, [ch(1)], { origin: 'tab-1' }));
    expect(b.log).toEqual([]);
    expect(skip.cursor).toBe(1);
    skip.apply(tx(2, [ch(2)]));
    expect(b.log).toEqual(['tx 2: 1', 'change 2 insert 2']);
  });

  it('writes every cursor to the store and routes error frames to onError', () => {
    const { log, h } = recorder();
    const writes: Array<[string, number]> = [];
    const s = createSubscription('orders:1', 'public.orders', {}, h, { cursorStore: { get: () => undefined, set: (k, v) => void writes.push([k, v]) } });
    s.apply({ type: 'subscribed', id: 'orders:1', seq: 4 });
    s.apply(tx(6, [ch(1)]));
    s.apply({ type: 'error', code: 'table_not_allowed', message: 'Not for this token.', id: 'orders:1' });
    expect(writes).toEqual([
      ['orders:1', 4],
      ['orders:1', 6],
    ]);
    expect(log.at(-1)).toBe('error table_not_allowed: Not for this token.');
  });

  it('voids snapshot pages cut short when the relay starts the subscription over with a new subscribed frame', () => {
    const { log, h } = recorder();
    const s = createSubscription('s', 'public.orders', { snapshot: true }, h);
    s.apply({ type: 'subscribed', id: 's', seq: 30 });
    s.apply({ type: 'snapshot', sub: 's', seq: 30, rows: [{ id: '1' }, { id: '2' }], more: true });
    // the relay lost its database connection mid-snapshot and serves a fresh one
    s.apply({ type: 'subscribed', id: 's', seq: 31 });
    s.apply({ type: 'snapshot', sub: 's', seq: 31, rows: [{ id: '1' }], more: true });
    s.apply({ type: 'snapshot', sub: 's', seq: 31, rows: [{ id: '2' }, { id: '3' }], more: false });
    expect(log).toEqual(['snapshot 31: 1,2,3']);
    expect(s.cursor).toBe(31);
  });
});
