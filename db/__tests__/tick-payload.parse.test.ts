// NOTIFY relay payloads as the relay reads them (pure logic; the database side is checked against relay.changes in
// capture.notify and capture.order).
import { describe, expect, it } from 'vitest';
import { changedColumns, parseTickPayload, payloadSeq, sameJson } from '../tick-payload.js';

describe('sameJson (jsonb equality)', () => {
  it('compares numbers by value, objects whatever their key order, arrays in order', () => {
    expect(sameJson(JSON.parse('1.0'), 1)).toBe(true);
    expect(sameJson({ a: 1, b: [1, { c: null }] }, { b: [1, { c: null }], a: 1 })).toBe(true);
    expect(sameJson([1, 2], [2, 1])).toBe(false);
    expect(sameJson({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameJson({ a: null }, {})).toBe(false);
    expect(sameJson('1', 1)).toBe(false);
    expect(sameJson(null, {})).toBe(false);
    expect(sameJson([], {})).toBe(false);
  });
});

describe('changedColumns (an update\'s old)', () => {
  it('keeps the old value of every column that changed, null ones too, and of columns the new row lacks', () => {
    expect(changedColumns({ id: '1', a: 'x', b: null, j: { k: [1] } }, { id: '1', a: 'y', b: 5, j: { k: [1] }, gone: 3 }))
      .toEqual({ a: 'y', b: 5, gone: 3 });
    expect(changedColumns({ id: '1', a: null }, { id: '1', a: 'was' })).toEqual({ a: 'was' });
    expect(changedColumns({ id: '1', a: 'same' }, { id: '1', a: 'same' })).toEqual({});
  });
});

describe('parseTickPayload', () => {
  const v2 = {
    v: 2, seq: 7, at: '2026-12-07T10:00:00.1+00:00', n: 3, origin: 'tab',
    changes: [
      { id: 10, tenant: 't', table: 'public.o', op: 'update', key: ['id', 'k'], row: { id: '1', k: 2, v: 'new' }, old_row: { id: '1', k: 2, v: 'old' }, old_tenant: null },
      { id: 11, tenant: 'u', table: 'public.o', op: 'delete', key: ['id', 'k'], row: { id: '2', k: 3, v: 'x' }, old_row: null, old_tenant: null },
      { id: 12, tenant: null, table: 'public.o', op: 'truncate', key: ['id', 'k'], row: null, old_row: null, old_tenant: null },
    ],
  };

  it('version 2: derives pk from the key columns and old from the old row', () => {
    expect(parseTickPayload(JSON.stringify(v2))).toEqual({
      seq: 7, at: v2.at, origin: 'tab',
      changes: [
        { id: 10, tenant: 't', table: 'public.o', op: 'update', pk: { id: '1', k: 2 }, row: { id: '1', k: 2, v: 'new' }, old: { v: 'old' }, oldTenant: null },
        { id: 11, tenant: 'u', table: 'public.o', op: 'delete', pk: { id: '2', k: 3 }, row: { id: '2', k: 3, v: 'x' }, old: null, oldTenant: null },
        { id: 12, tenant: null, table: 'public.o', op: 'truncate', pk: null, row: null, old: null, oldTenant: null },
      ],
    });
  });

  it('version 1 (pgrelay 0.2) as it came, a reference without changes, and nothing for what is not a payload', () => {
    const v1 = { v: 1, seq: 3, at: 'x', n: 1, origin: null, changes: [{ id: 1, tenant: 't', table: 'public.o', op: 'insert', pk: { id: 1 }, row: { id: 1 }, old: null, old_tenant: null }] };
    expect(parseTickPayload(JSON.stringify(v1))!.changes).toEqual([{ id: 1, tenant: 't', table: 'public.o', op: 'insert', pk: { id: 1 }, row: { id: 1 }, old: null, oldTenant: null }]);
    expect(parseTickPayload('{"v":2,"seq":9,"at":"x","n":4}')).toEqual({ seq: 9, origin: null });
    for (const bad of ['', 'null', '{"v":3,"seq":1}', '{"v":2,"seq":0}', '{"v":2,"seq":"1"}', '{"v":2,"seq":1.5}', '{']) expect(parseTickPayload(bad)).toBeUndefined();
  });

  it('payloadSeq reads the seq as relay.tick writes it, without parsing', () => {
    expect(payloadSeq('{"v":2,"seq":123,"at":"x"}')).toBe(123);
    expect(payloadSeq('{"v":1,"seq":5,"at":"x"}')).toBe(5);
    expect(payloadSeq('{"seq":5,"v":2}')).toBeUndefined();
  });
});
