// backoff(): full jitter under an exponential cap.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoff } from '../shared/backoff.js';

describe('backoff', () => {
  it('stays in [0, min(max, min·2^attempt)) for every attempt', () => {
    fc.assert(
      fc.property(fc.nat(200), fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 100_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (a, min, max, r) => {
        const d = backoff(a, min, max, () => r);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(Math.min(max, min * 2 ** a) + 1e-9);
      }),
    );
  });

  it('doubles its ceiling per attempt up to the cap', () => {
    const top = (a: number) => backoff(a, 500, 30_000, () => 1);
    expect([0, 1, 2, 3, 4, 5, 6, 7, 50, 5000].map(top)).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000]);
    expect(backoff(9, 500, 30_000, () => 0)).toBe(0);
  });

  it('spreads delays over the whole range (full jitter, not a fixed step)', () => {
    const ds = Array.from({ length: 2000 }, () => backoff(3, 500, 30_000));
    const buckets = [0, 0, 0, 0];
    for (const d of ds) buckets[Math.floor(d / 1000)]!++;
    // Uniform over [0, 4000): each quarter gets about 500 of 2000.
    for (const b of buckets) expect(b).toBeGreaterThan(350);
    expect(Math.max(...ds)).toBeLessThan(4000);
  });
});
