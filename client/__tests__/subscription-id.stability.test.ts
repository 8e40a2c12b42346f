// Deterministic subscription ids: equal streams share an id across clients and tabs.
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../shared/canonical-json.js';
import { subscriptionId } from '../subscription-id.js';

describe('subscriptionId', () => {
  it('ignores key order and undefined members in the filter', () => {
    expect(canonicalJson({ b: { in: [2, 1] }, a: { eq: 'x', lt: undefined } })).toBe('{"a":{"eq":"x"},"b":{"in":[2,1]}}');
    const a = subscriptionId('public.orders', { status: { eq: 'open' }, total: { gt: '10' } }, false);
    const b = subscriptionId('public.orders', { total: { gt: '10' }, status: { eq: 'open' } }, false);
    expect(a).toBe(b);
    expect(a).toMatch(/^public\.orders:[0-9a-z]{1,7}$/);
  });

  it('differs with the filter, the snapshot flag and the table', () => {
    const ids = new Set([
      subscriptionId('public.orders', undefined, false),
      subscriptionId('public.orders', undefined, true),
      subscriptionId('public.orders', { id: { eq: 1 } }, false),
      subscriptionId('public.orders', { id: { eq: '1' } }, false),
      subscriptionId('audit.orders', undefined, false),
    ]);
    expect(ids.size).toBe(5);
  });

  it('is stable across releases (ids are shared with other clients and tabs)', () => {
    expect(subscriptionId('public.orders', undefined, false)).toBe(subscriptionId('public.orders', undefined, false));
    expect(subscriptionId('public.orders', undefined, false)).toMatchInlineSnapshot(`"public.orders:x0xxgk"`);
  });
});
