// The size budget, as a user's bundler sees pgrelay/client (bench/benchmarks/size.ts measures): core ≤ 4 KiB with presence and the SSE transport, TanStack adapter ≤ 1.5 KiB, gzipped.
import { describe, expect, it } from 'vitest';
import { budgets, measureClientSize } from '../../bench/benchmarks/size.js';

describe('client size budget', () => {
  it('keeps the core and the TanStack adapter within their gzip budgets', async () => {
    const results = await measureClientSize();
    expect(results.map((r) => r.name)).toEqual(['core', 'tanstack']);
    for (const r of results) {
      expect(r.budget).toBe(budgets[r.name]);
      expect(r.gzip, `${r.name}: ${r.gzip} B gzip, budget ${r.budget} B`).toBeLessThanOrEqual(r.budget);
      expect(r.ok).toBe(true);
    }
    // The adapter is measured without the core: it must be much smaller than both together.
    const [core, adapter] = results as [(typeof results)[0], (typeof results)[0]];
    expect(adapter.minified).toBeLessThan(core.minified);
    expect(adapter.gzip).toBeGreaterThan(200);
  });
});
